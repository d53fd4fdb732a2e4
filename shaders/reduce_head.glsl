/* reduce_head.glsl: extension lines for reduce.glsl; include right after #version. */
#ifdef RS_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
