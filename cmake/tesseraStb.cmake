# Locate stb as packaged by Debian (libstb-dev): headers in <prefix>/include/stb and the
# implementations precompiled into libstb, so consumers must NOT define STB_*_IMPLEMENTATION.
# Used by the build tree and by the installed tesseraConfig.cmake, so the install never
# bakes in build-machine paths. Defines tessera::stb and sets TESSERA_STB_FOUND.
find_path(TESSERA_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
find_library(TESSERA_STB_LIBRARY stb)
mark_as_advanced(TESSERA_STB_INCLUDE_DIR TESSERA_STB_LIBRARY)

if(TESSERA_STB_INCLUDE_DIR AND TESSERA_STB_LIBRARY)
  set(TESSERA_STB_FOUND TRUE)
  if(NOT TARGET tessera::stb)
    add_library(tessera::stb UNKNOWN IMPORTED)
    set_target_properties(tessera::stb PROPERTIES
      IMPORTED_LOCATION "${TESSERA_STB_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${TESSERA_STB_INCLUDE_DIR}")
  endif()
else()
  set(TESSERA_STB_FOUND FALSE)
endif()
