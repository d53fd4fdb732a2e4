# api: the REST API's request parsers (daemon/api_body.c). Unit tests, plus
# the fuzz corpus and every saved crash replayed through the fuzz entry
# point with the normal compiler.
rs_unit_test(api_body_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_body_test.c
  LIBS rs_api_body)

add_executable(api_fuzz_replay
  ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c
  ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_api_body.c)
target_include_directories(api_fuzz_replay PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
target_link_libraries(api_fuzz_replay PRIVATE rs_api_body)
rs_script_test(api_fuzz_replay LABELS "queue" TIMEOUT 60
  COMMAND $<TARGET_FILE:api_fuzz_replay>
    ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/api_body
    ${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/api_body)
