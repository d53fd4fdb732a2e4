# ckpt: the engine's double-precision CPU reference (engine/ref.c) and the
# .safetensors checkpoint format (engine/safetensors.c). Built from the
# sources directly so these tests do not wait on the Vulkan library.
rs_unit_test(ref_test LABELS "engine" TIMEOUT 120
  SOURCES ${PROJECT_SOURCE_DIR}/engine/ref.c ${CMAKE_CURRENT_LIST_DIR}/ref_test.c
  LIBS rs_common m)
target_include_directories(ref_test PRIVATE ${PROJECT_SOURCE_DIR}/engine)

rs_unit_test(ckpt_test LABELS "engine" TIMEOUT 120
  SOURCES ${PROJECT_SOURCE_DIR}/engine/safetensors.c ${CMAKE_CURRENT_LIST_DIR}/ckpt_test.c
  LIBS rs_common PkgConfig::CJSON m)
target_include_directories(ckpt_test PRIVATE ${PROJECT_SOURCE_DIR}/engine)

# The fuzz seed corpus and every saved crash, replayed with the normal compiler.
add_executable(safetensors_fuzz_replay
  ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.c
  ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_safetensors.c
  ${PROJECT_SOURCE_DIR}/engine/safetensors.c)
target_include_directories(safetensors_fuzz_replay PRIVATE
  ${PROJECT_SOURCE_DIR}/tests/fuzz ${PROJECT_SOURCE_DIR}/engine)
target_link_libraries(safetensors_fuzz_replay PRIVATE rs_common PkgConfig::CJSON)
rs_script_test(safetensors_fuzz_replay LABELS "engine" TIMEOUT 60
  COMMAND $<TARGET_FILE:safetensors_fuzz_replay>
    ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/safetensors
    ${PROJECT_SOURCE_DIR}/tests/fuzz/regressions/safetensors)
