# ---- removal-B: removal train + infer through a real farm ----
if(TARGET rs_removal)
  rs_script_test(removal_integration LABELS "removal;integration"
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/removal_test.sh TIMEOUT 600)
endif()
# ---- end removal-B ----
# ---- removaltests: eval --method rushes, bad inputs through a farm ----
if(TARGET rs_removal)
  rs_script_test(removal_eval_integration LABELS "removal;integration"
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/removal_eval_test.sh TIMEOUT 300)
endif()
if(TARGET rs_removal)
  rs_script_test(removal_bad_input_integration LABELS "removal;integration"
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/removal_bad_input_test.sh TIMEOUT 300)
endif()
# ---- end removaltests ----
