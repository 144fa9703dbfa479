# Helpers for the packaging test scripts (run with cmake -P).

# tern_step(<description> <command> [args...]): run a command with a time limit; stop the
# script with an error when it fails.
function(tern_step what)
  message(STATUS "---- ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE _rc TIMEOUT 240)
  if(NOT _rc EQUAL 0)
    string(REPLACE ";" " " _cmd "${ARGN}")
    message(FATAL_ERROR "step failed (${_rc}): ${what}\n  command: ${_cmd}")
  endif()
endfunction()

# tern_needed(<readelf> <binary> <out var>): the DT_NEEDED entries of an ELF binary.
function(tern_needed readelf binary out)
  execute_process(COMMAND "${readelf}" -d "${binary}" OUTPUT_VARIABLE _dyn RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${binary} failed")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]*\\]" _lines "${_dyn}")
  set(_libs "")
  foreach(_line IN LISTS _lines)
    string(REGEX REPLACE ".*\\[(.*)\\]" "\\1" _lib "${_line}")
    list(APPEND _libs "${_lib}")
  endforeach()
  set(${out} "${_libs}" PARENT_SCOPE)
endfunction()
