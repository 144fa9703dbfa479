# The installed package, used from outside the tree the ways the README documents; one
# script, one part per test (-DPART=...), each installing tern into its own prefix:
#   find_package  a CMake project (tests/consumer) with find_package(tern 0.1 REQUIRED):
#                 main.c linked to tern::tern and tern::tern_static, and with WITH_CXX
#                 main.cpp (tern.hpp) the same two ways; each runs an echo round trip;
#   pkg_config    main.c (and main.cpp with CXX_COMPILER) compiled with
#                 `pkg-config --cflags --libs tern` (run with LD_LIBRARY_PATH), and linked
#                 statically with libtern.a and `pkg-config --static --libs tern`;
#   dlopen        dlopen_main.c and its C++ build, not linked against libtern, load the
#                 installed libtern.so.0 by path and run the round trip.
# Any failing step fails the test.
#
# cmake -DPART=find_package|pkg_config|dlopen -DTERN_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=...
#       -DWORK_DIR=... -DLIBDIR=lib [-DGENERATOR=...] [-DC_COMPILER=...] [-DCXX_COMPILER=...]
#       [-DPKG_CONFIG=...] [-DREADELF=...]
#       [-DREQUIRE_PKG_CONFIG=ON: without pkg-config, fail instead of skipping]
#       -P consumer_find_package.cmake
include("${CMAKE_CURRENT_LIST_DIR}/steps.cmake")

if(NOT PART)
  set(PART find_package)
endif()
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

# --- find_package (and dlopen: the same project builds its dlopen consumers) -------------
if(PART STREQUAL "pkg_config")
  include("${CMAKE_CURRENT_LIST_DIR}/consumer_pkg_config.cmake")
  return()
endif()
set(_gen_args "")
set(_cxx_args "")
if(CXX_COMPILER)
  set(_cxx_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DWITH_CXX=ON)
endif()
if(GENERATOR)
  list(APPEND _gen_args -G "${GENERATOR}")
endif()
tern_step("configure the consumer project"
  "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" ${_gen_args}
  "-DCMAKE_C_COMPILER=${C_COMPILER}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_BUILD_TYPE=Release
  ${_cxx_args})

# It must have found the tern just installed, not another one.
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" _tern_dir REGEX "^tern_DIR:")
string(REGEX REPLACE "^tern_DIR:[A-Z]*=" "" _tern_dir "${_tern_dir}")
file(REAL_PATH "${_tern_dir}" _tern_dir)
file(REAL_PATH "${libdir}/cmake/tern" _expected_dir)
if(NOT _tern_dir STREQUAL _expected_dir)
  message(FATAL_ERROR "consumer_find_package: found tern in ${_tern_dir}, expected ${_expected_dir}")
endif()

tern_step("build the consumer project" "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
if(PART STREQUAL "dlopen")
  # The installed library by path; the programs are not linked against it.
  foreach(_exe consumer_dlopen consumer_dlopen_cpp)
    if(_exe MATCHES "cpp" AND NOT CXX_COMPILER)
      continue()
    endif()
    if(READELF)
      tern_needed("${READELF}" "${WORK_DIR}/build/${_exe}" _needed)
      if(_needed MATCHES "libtern")
        message(FATAL_ERROR "consumer_dlopen: ${_exe} is linked against libtern (needs: ${_needed})")
      endif()
    endif()
    tern_step("run ${_exe} (dlopen ${libdir}/libtern.so.0)" "${WORK_DIR}/build/${_exe}" "${libdir}/libtern.so.0")
  endforeach()
  message(STATUS "consumer_dlopen: all steps passed")
  return()
endif()
set(_runs consumer_shared consumer_static)
if(CXX_COMPILER)
  list(APPEND _runs consumer_cpp_shared consumer_cpp_static)
endif()
foreach(_exe IN LISTS _runs)
  tern_step("run ${_exe}" "${WORK_DIR}/build/${_exe}")
endforeach()

# Shared ones need libtern.so.0; static ones no shared libtern at all.
if(READELF)
  foreach(_exe IN LISTS _runs)
    tern_needed("${READELF}" "${WORK_DIR}/build/${_exe}" _needed)
    if(_exe MATCHES "shared$" AND NOT "libtern.so.0" IN_LIST _needed)
      message(FATAL_ERROR "consumer_find_package: ${_exe} does not need libtern.so.0 (needs: ${_needed})")
    elseif(_exe MATCHES "static$" AND _needed MATCHES "libtern")
      message(FATAL_ERROR "consumer_find_package: ${_exe} needs a shared libtern (needs: ${_needed})")
    endif()
  endforeach()
endif()

message(STATUS "consumer_find_package: all steps passed")
