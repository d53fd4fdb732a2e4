# proto: wire messages. Unit tests, plus the fuzz corpus and every saved
# crash replayed through the fuzz entry point with the normal compiler.
rs_unit_test(proto_test LABELS "queue" SOURCES ${CMAKE_CURRENT_LIST_DIR}/proto_test.c
  LIBS rs_proto)

add_executable(proto_fuzz_replay
  ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c
  ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_proto.c)
target_include_directories(proto_fuzz_replay PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
target_link_libraries(proto_fuzz_replay PRIVATE rs_proto)
rs_script_test(proto_fuzz_replay LABELS "queue" TIMEOUT 60
  COMMAND $<TARGET_FILE:proto_fuzz_replay>
    ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/proto
    ${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/proto)
