# ledger: the compliance ledger (ledger/): chain, signatures, offline
# verification, tamper cases, masks, audit on real altered frames, consent.
rs_unit_test(ledger_test LABELS "ledger" TIMEOUT 120
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ledger_test.c
  LIBS rs_ledger rs_store PkgConfig::SODIUM)
