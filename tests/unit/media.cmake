# media: footage readers/writers, colour, sequences, audio, shards, and the
# fuzz corpora of every reader replayed through its fuzz entry point.
find_package(ZLIB REQUIRED)
rs_unit_test(media_image_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_image_test.c
  LIBS rs_media ZLIB::ZLIB)
rs_unit_test(media_video_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_video_test.c
  LIBS rs_media TIMEOUT 240)
rs_unit_test(media_colour_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_colour_test.c
  LIBS rs_media)
rs_unit_test(media_seq_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_seq_test.c
  LIBS rs_media)
rs_unit_test(media_audio_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_audio_test.c
  LIBS rs_media)
rs_unit_test(media_shard_test LABELS "media" SOURCES ${CMAKE_CURRENT_LIST_DIR}/media_shard_test.c
  LIBS rs_media)

# Every media reader's fuzz entry point, replayed over its seed corpus and
# saved crashes with the normal compiler (scripts/fuzz runs them under
# libFuzzer with clang and sanitizers).
foreach(reader png tiff dpx exr audio video)
  add_executable(media_fuzz_replay_${reader}
    ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c
    ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_${reader}.c)
  target_include_directories(media_fuzz_replay_${reader} PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
  target_link_libraries(media_fuzz_replay_${reader} PRIVATE rs_media)
  rs_script_test(media_fuzz_replay_${reader} LABELS "media" TIMEOUT 120
    COMMAND $<TARGET_FILE:media_fuzz_replay_${reader}>
      ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${reader}
      ${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/${reader})
endforeach()
rs_unit_test(media_probe_cli_test LABELS "media" SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/media_probe_cli_test.c LIBS rs_cli rs_media)
