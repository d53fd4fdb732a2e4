# removal: wire/rig removal (tasks/removal).

# ---- removal-B: the removal job kinds and the model registry ----
# (reconstructed by removal-A from removal-B's build after an accidental
#  overwrite: same tests, labels, libraries and timeouts as before)
if(TARGET rs_removal)
  rs_unit_test(removal_kind_test LABELS "removal"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/removal_kind_test.c
    LIBS rs_tasks rs_removal TIMEOUT 300)
endif()
rs_unit_test(removal_model_test LABELS "removal;queue"
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/removal_model_test.c
  LIBS rs_store TIMEOUT 120)
# ---- end removal-B ----

# ---- removal-A: stage 1 (propagation, spatial fill, wires, metrics) ----
if(TARGET rs_removal_stage1)
  rs_unit_test(removal_stage1_test LABELS "removal"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/removal_stage1_test.c
    LIBS rs_removal_stage1 rs_media TIMEOUT 120)
endif()
# ---- end removal-A ----
# ---- removaltests: float (EXR) sources and labels ----
if(TARGET rs_removal)
  rs_unit_test(removal_exr_test LABELS "removal"
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/removal_exr_test.c
    LIBS rs_tasks rs_removal TIMEOUT 300)
endif()
# ---- end removaltests ----
