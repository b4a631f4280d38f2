// The fuzz build compiles Debian's stb headers' implementations itself (instead of linking
// libstb) so that the sanitizers and libFuzzer's coverage reach into the decoders.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
