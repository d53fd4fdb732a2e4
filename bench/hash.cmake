# hash_bench: rs_hash_file throughput against `xxhsum -H3` on the same files.
add_executable(hash_bench ${CMAKE_CURRENT_LIST_DIR}/hash_bench.c)
target_link_libraries(hash_bench PRIVATE rs_common)
