// Catch2 v2 entry point for tessera_tests; test cases live in the other tests/test_*.cpp files.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
