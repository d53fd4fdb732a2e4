# fuzz_safetensors links the checkpoint reader on its own (engine/safetensors.c
# plus cJSON), so the fuzzer does not need Vulkan. If engine/CMakeLists.txt
# defines an rs_safetensors library, that one is used instead.
if(NOT TARGET rs_safetensors)
  add_library(rs_safetensors STATIC ${PROJECT_SOURCE_DIR}/engine/safetensors.c)
  target_include_directories(rs_safetensors PUBLIC ${PROJECT_SOURCE_DIR}/engine)
  target_link_libraries(rs_safetensors PUBLIC rs_common PkgConfig::CJSON)
endif()
