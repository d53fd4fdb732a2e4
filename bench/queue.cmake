add_executable(http_load ${CMAKE_CURRENT_LIST_DIR}/http_load.c)
target_link_libraries(http_load PRIVATE Threads::Threads)
