rs_unit_test(cli_test LABELS "ops" SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_test.c LIBS rs_cli
             TIMEOUT 60)
# `rushes mhl verify` is real only when the ingest module provides mhl_verify.
get_property(RS_CLI_MHL_BUILT GLOBAL PROPERTY RS_CLI_MHL)
if(RS_CLI_MHL_BUILT)
  target_compile_definitions(cli_test PRIVATE RUSHES_CLI_HAVE_MHL_VERIFY=1)
endif()
