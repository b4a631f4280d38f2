// tessera/core/eigen.hpp — Eigen, as tessera includes it: the one place its headers come in.
// GCC 12's AVX-512 and AVX intrinsic headers start some vectors from an undefined value
// (`__m512 __Y = __Y;`), which -Wmaybe-uninitialized then reports at every use inlined into
// Eigen's products — hundreds of lines in a build (GCC bug 105593, fixed in GCC 13). The
// intrinsic headers are first read here, through Eigen, with that warning off for their lines.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#pragma GCC diagnostic pop
