/*
 * fuzz.h: the one entry point every fuzz target defines. libFuzzer calls it
 * under clang; replay_main.c calls it from the ordinary (gcc) test suite so
 * the corpus and every saved crash replay on each `ctest` run.
 */
#ifndef RS_FUZZ_H
#define RS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0; aborts (the fuzzer's signal) when an invariant breaks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
