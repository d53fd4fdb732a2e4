# rs_embed_text(OUT_C VAR FILES...) writes a C file defining
#   const char VAR_<stem>[] = "...";  for each input file, regenerated when
# an input changes. Used to carry sql/ inside rushesd so a deployed binary
# never depends on finding its schema on disk.
function(rs_embed_text out_c var)
  set(inputs ${ARGN})
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} -DVAR=${var} "-DINPUTS=${inputs}"
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${inputs} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    VERBATIM)
endfunction()
