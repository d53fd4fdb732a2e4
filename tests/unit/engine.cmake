# Engine tests: every op and variant against engine/ref.h, under the
# Khronos validation layers (any warning or error fails the test).
if(TARGET rs_engine)
  set(RS_ENGINE_TESTS engine_vk_test engine_conv_test engine_ops_test engine_unet_test engine_torch_test
      engine_data_test engine_patches_test)
  rs_unit_test(engine_vk_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_vk_test.c LIBS rs_engine TIMEOUT 120)
  rs_unit_test(engine_conv_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_conv_test.c LIBS rs_engine TIMEOUT 120)
  rs_unit_test(engine_ops_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_ops_test.c LIBS rs_engine TIMEOUT 120)
  rs_unit_test(engine_unet_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_unet_test.c LIBS rs_engine TIMEOUT 120)
  rs_unit_test(engine_torch_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_torch_test.c LIBS rs_engine TIMEOUT 120)
  rs_unit_test(engine_data_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_data_test.c LIBS rs_engine PkgConfig::PNG TIMEOUT 120)
  rs_unit_test(engine_patches_test LABELS "engine"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/engine_patches_test.c LIBS rs_engine TIMEOUT 60)
  foreach(t ${RS_ENGINE_TESTS})
    set_tests_properties(${t} PROPERTIES ENVIRONMENT "RUSHES_VK_VALIDATION=1")
  endforeach()
endif()
