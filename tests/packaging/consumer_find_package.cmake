# consumer_find_package: install tern into a temporary prefix, then use it from outside
# the tree the three ways the README documents:
#   1. a CMake project (tests/consumer) with find_package(tern 0.1 REQUIRED), linking
#      tern::tern and tern::tern_static; both programs run an echo round trip;
#   2. the same main.c compiled with `pkg-config --cflags --libs tern`, run with
#      LD_LIBRARY_PATH pointing at the prefix;
#   3. main.c linked against libtern.a with `pkg-config --static --libs tern`.
# Any failing step fails the test.
#
# cmake -DTERN_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -DLIBDIR=lib
#       [-DGENERATOR=...] [-DC_COMPILER=...] [-DPKG_CONFIG=...] [-DREADELF=...]
#       [-DREQUIRE_PKG_CONFIG=ON: without pkg-config, fail instead of skipping part 2 and 3]
#       -P consumer_find_package.cmake
include("${CMAKE_CURRENT_LIST_DIR}/steps.cmake")

foreach(_var TERN_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR LIBDIR C_COMPILER)
  if(NOT ${_var})
    message(FATAL_ERROR "consumer_find_package: -D${_var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(libdir "${prefix}/${LIBDIR}")

# --- install -----------------------------------------------------------------------------
tern_step("cmake --install" "${CMAKE_COMMAND}" --install "${TERN_BUILD_DIR}" --prefix "${prefix}")

foreach(_file include/tern.h ${LIBDIR}/libtern.so.0.1.0 ${LIBDIR}/libtern.a
              ${LIBDIR}/cmake/tern/tern-config.cmake
              ${LIBDIR}/cmake/tern/tern-config-version.cmake
              ${LIBDIR}/pkgconfig/tern.pc)
  if(NOT EXISTS "${prefix}/${_file}" OR IS_SYMLINK "${prefix}/${_file}")
    message(FATAL_ERROR "consumer_find_package: ${_file} is not installed as a file")
  endif()
endforeach()
# The soname links: libtern.so -> libtern.so.0 -> libtern.so.0.1.0
foreach(_pair "libtern.so=libtern.so.0" "libtern.so.0=libtern.so.0.1.0")
  string(REPLACE "=" ";" _pair "${_pair}")
  list(GET _pair 0 _link)
  list(GET _pair 1 _target)
  if(NOT IS_SYMLINK "${libdir}/${_link}")
    message(FATAL_ERROR "consumer_find_package: ${LIBDIR}/${_link} is not a symlink")
  endif()
  file(READ_SYMLINK "${libdir}/${_link}" _got)
  if(NOT _got STREQUAL _target)
    message(FATAL_ERROR "consumer_find_package: ${LIBDIR}/${_link} -> ${_got}, expected ${_target}")
  endif()
endforeach()
message(STATUS "installed layout under ${prefix} is complete")

# --- find_package ------------------------------------------------------------------------
set(_gen_args "")
if(GENERATOR)
  list(APPEND _gen_args -G "${GENERATOR}")
endif()
tern_step("configure the consumer project"
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" ${_gen_args}
  "-DCMAKE_C_COMPILER=${C_COMPILER}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_BUILD_TYPE=Release)

# It must have found the tern just installed, not another one.
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" _tern_dir REGEX "^tern_DIR:")
string(REGEX REPLACE "^tern_DIR:[A-Z]*=" "" _tern_dir "${_tern_dir}")
file(REAL_PATH "${_tern_dir}" _tern_dir)
file(REAL_PATH "${libdir}/cmake/tern" _expected_dir)
if(NOT _tern_dir STREQUAL _expected_dir)
  message(FATAL_ERROR "consumer_find_package: found tern in ${_tern_dir}, expected ${_expected_dir}")
endif()

tern_step("build the consumer project" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
tern_step("run consumer_shared (tern::tern)" "${WORK_DIR}/build/consumer_shared")
tern_step("run consumer_static (tern::tern_static)" "${WORK_DIR}/build/consumer_static")

if(READELF)
  tern_needed("${READELF}" "${WORK_DIR}/build/consumer_shared" _needed)
  if(NOT "libtern.so.0" IN_LIST _needed)
    message(FATAL_ERROR "consumer_find_package: consumer_shared does not need libtern.so.0 (needs: ${_needed})")
  endif()
  tern_needed("${READELF}" "${WORK_DIR}/build/consumer_static" _needed)
  if(_needed MATCHES "libtern")
    message(FATAL_ERROR "consumer_find_package: consumer_static needs a shared libtern (needs: ${_needed})")
  endif()
endif()

# --- pkg-config --------------------------------------------------------------------------
if(NOT PKG_CONFIG OR PKG_CONFIG MATCHES "NOTFOUND")
  if(REQUIRE_PKG_CONFIG)
    message(FATAL_ERROR "consumer_find_package: pkg-config not found, and TERN_REQUIRE_ALL_TESTS "
                        "is ON: the pkg-config part cannot be skipped")
  endif()
  message(STATUS "pkg-config not found: the pkg-config part of this test is skipped")
  return()
endif()

set(_pc_env "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${libdir}/pkgconfig")
execute_process(COMMAND ${_pc_env} "${PKG_CONFIG}" --cflags --libs tern
                OUTPUT_VARIABLE _pc_flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "consumer_find_package: pkg-config --cflags --libs tern failed")
endif()
message(STATUS "pkg-config --cflags --libs tern: ${_pc_flags}")
separate_arguments(_pc_flags UNIX_COMMAND "${_pc_flags}")
tern_step("compile main.c with pkg-config flags"
  "${C_COMPILER}" -std=gnu11 "${CONSUMER_SOURCE_DIR}/main.c" ${_pc_flags}
  -o "${WORK_DIR}/consumer_pkgconfig")
tern_step("run consumer_pkgconfig (LD_LIBRARY_PATH=${libdir})"
  "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${libdir}" "${WORK_DIR}/consumer_pkgconfig")

# Static linking: libtern.a by path, plus everything Libs.private lists.
execute_process(COMMAND ${_pc_env} "${PKG_CONFIG}" --static --cflags --libs tern
                OUTPUT_VARIABLE _pc_static OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "consumer_find_package: pkg-config --static --cflags --libs tern failed")
endif()
message(STATUS "pkg-config --static --cflags --libs tern: ${_pc_static}")
separate_arguments(_pc_static UNIX_COMMAND "${_pc_static}")
list(TRANSFORM _pc_static REPLACE "^-ltern$" "${libdir}/libtern.a")
tern_step("link main.c statically with pkg-config --static flags"
  "${C_COMPILER}" -std=gnu11 "${CONSUMER_SOURCE_DIR}/main.c" ${_pc_static}
  -o "${WORK_DIR}/consumer_pkgconfig_static")
tern_step("run consumer_pkgconfig_static" "${WORK_DIR}/consumer_pkgconfig_static")

message(STATUS "consumer_find_package: all steps passed")
