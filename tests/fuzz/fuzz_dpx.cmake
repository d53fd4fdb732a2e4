# Links the media readers (no rs_<name> library exists for this target).
set(RS_FUZZ_LIBS rs_media)
