# media_bench: EXR read/write and video decode timings for bench/media.
add_executable(media_bench ${CMAKE_CURRENT_LIST_DIR}/media_bench.c)
target_link_libraries(media_bench PRIVATE rs_media)
