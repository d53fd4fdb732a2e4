# ---- removal-B: removal train + infer through a real farm ----
if(TARGET rs_removal)
  rs_script_test(removal_integration LABELS "removal;integration"
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/removal_test.sh TIMEOUT 600)
endif()
# ---- end removal-B ----
