# subdirectory_consumer: a project that pulls tern in with add_subdirectory()
# (tests/subdirectory) configures, builds and runs, linking tern::tern and
# tern::tern_static, from C and (with CXX_COMPILER) from C++ through tern.hpp. It reuses the main build's cargo target directory, so cargo finds
# everything up to date instead of compiling the crate a second time.
#
# cmake -DTERN_SOURCE_DIR=... -DWORK_DIR=...
#       [-DGENERATOR=...] [-DC_COMPILER=...] [-DCXX_COMPILER=...: the C++ consumers too]
#       [-DCARGO_TARGET_DIR=...] [-DCARGO_PROFILE=...]
#       -P subdirectory_consumer.cmake
include("${CMAKE_CURRENT_LIST_DIR}/steps.cmake")

foreach(_var TERN_SOURCE_DIR WORK_DIR)
  if(NOT ${_var})
    message(FATAL_ERROR "subdirectory_consumer: -D${_var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
set(_args -S "${TERN_SOURCE_DIR}/tests/subdirectory" -B "${WORK_DIR}"
          "-DTERN_SOURCE_DIR=${TERN_SOURCE_DIR}")
if(GENERATOR)
  list(APPEND _args -G "${GENERATOR}")
endif()
if(C_COMPILER)
  list(APPEND _args "-DCMAKE_C_COMPILER=${C_COMPILER}")
endif()
if(CXX_COMPILER)
  list(APPEND _args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DWITH_CXX=ON)
endif()
if(CARGO_TARGET_DIR)
  list(APPEND _args "-DTERN_CARGO_TARGET_DIR=${CARGO_TARGET_DIR}")
endif()
if(CARGO_PROFILE)
  list(APPEND _args "-DTERN_CARGO_PROFILE=${CARGO_PROFILE}")
endif()

tern_step("configure the add_subdirectory project" "${CMAKE_COMMAND}" ${_args})
tern_step("build the add_subdirectory project" "${CMAKE_COMMAND}" --build "${WORK_DIR}")
tern_step("run consumer_shared (tern::tern)" "${WORK_DIR}/consumer_shared")
tern_step("run consumer_static (tern::tern_static)" "${WORK_DIR}/consumer_static")
if(CXX_COMPILER)
  tern_step("run consumer_cpp_shared (tern.hpp, tern::tern)" "${WORK_DIR}/consumer_cpp_shared")
  tern_step("run consumer_cpp_static (tern.hpp, tern::tern_static)" "${WORK_DIR}/consumer_cpp_static")
endif()
message(STATUS "subdirectory_consumer: all steps passed")
