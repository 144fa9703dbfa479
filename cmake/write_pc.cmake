# Writes tern.pc at install time (included from cmake_install.cmake), so that the file
# names the prefix actually installed to: cmake --install build --prefix /somewhere.
# In: TERN_PC_IN, TERN_PC_OUT, TERN_PC_LIBDIR, TERN_PC_INCLUDEDIR (relative to the
# prefix, or absolute), TERN_PC_VERSION, TERN_PC_LIBS_PRIVATE, CMAKE_INSTALL_PREFIX.
foreach(_dir TERN_PC_LIBDIR TERN_PC_INCLUDEDIR)
  if(NOT IS_ABSOLUTE "${${_dir}}")
    set(${_dir} "\${prefix}/${${_dir}}")
  endif()
endforeach()
configure_file("${TERN_PC_IN}" "${TERN_PC_OUT}" @ONLY)
