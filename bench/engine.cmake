# engine_bench: conv kernels against the device's register-tiled SGEMM peak,
# U-Net training/inference throughput (compare bench/engine_torch.py).
if(TARGET rs_engine)
  add_executable(engine_bench ${CMAKE_CURRENT_LIST_DIR}/engine_bench.c)
  target_link_libraries(engine_bench PRIVATE rs_engine)
endif()
