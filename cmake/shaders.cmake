# GLSL compute shaders -> SPIR-V (glslc, at build time) -> one generated C
# file holding every variant as a uint32_t array plus a name table, so a
# deployed binary never looks for shaders on disk.
#
# Variants are the same .comp compiled with different -D macros; which ones
# exist is decided here by feature tests against glslc (does it know the
# extension?) and at device creation by engine/vk.c (does the device have
# the feature?). Options follow the RUSHES_* naming.
#
#   rs_shader(LIST name source.comp [DEFINES A=1 B ...])  appends one variant
#   rs_shader_embed(out_c LIST)                            writes the C table

find_program(RUSHES_GLSLC glslc REQUIRED)
set(RUSHES_VK_TARGET_ENV "vulkan1.1" CACHE STRING
    "glslc --target-env for the engine's shaders (1.1 gives SPIR-V 1.3: subgroups)")
option(RUSHES_SHADER_SUBGROUP "Build subgroup-operation shader variants when glslc supports them" ON)
option(RUSHES_SHADER_FP16 "Build fp16-arithmetic shader variants when glslc supports them" ON)
option(RUSHES_SHADER_COOPMAT "Build cooperative-matrix shader variants when glslc supports them" ON)

# rs_glslc_supports(VAR "extension line" "body"): compiles a tiny shader.
function(rs_glslc_supports var ext body)
  if(DEFINED ${var})
    return()
  endif()
  set(dir ${CMAKE_BINARY_DIR}/glslc-probe)
  file(MAKE_DIRECTORY ${dir})
  file(WRITE ${dir}/${var}.comp
       "#version 450\n${ext}\nlayout(local_size_x = 64) in;\n"
       "layout(std430, binding = 0) buffer B { float d[]; };\n"
       "void main() {\n${body}\n}\n")
  execute_process(
    COMMAND ${RUSHES_GLSLC} --target-env=${RUSHES_VK_TARGET_ENV} -fshader-stage=compute
            ${dir}/${var}.comp -o ${dir}/${var}.spv
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(${var} ON CACHE INTERNAL "glslc feature probe")
    message(STATUS "glslc supports ${var}")
  else()
    set(${var} OFF CACHE INTERNAL "glslc feature probe")
    message(STATUS "glslc lacks ${var}")
  endif()
endfunction()

rs_glslc_supports(RUSHES_GLSLC_HAS_SUBGROUP
  "#extension GL_KHR_shader_subgroup_arithmetic : require"
  "d[gl_GlobalInvocationID.x] = subgroupAdd(d[gl_GlobalInvocationID.x]);")
rs_glslc_supports(RUSHES_GLSLC_HAS_FP16
  "#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require"
  "float16_t h = float16_t(d[0]); d[1] = float(h * h);")
rs_glslc_supports(RUSHES_GLSLC_HAS_COOPMAT
  "#extension GL_KHR_cooperative_matrix : require\n#extension GL_KHR_memory_scope_semantics : require"
  "coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator> c = coopmat<float, gl_ScopeSubgroup, 16, 16, gl_MatrixUseAccumulator>(0.0); coopMatStore(c, d, 0, 16, gl_CooperativeMatrixLayoutRowMajor);")

set(RUSHES_BUILD_SUBGROUP OFF)
if(RUSHES_SHADER_SUBGROUP AND RUSHES_GLSLC_HAS_SUBGROUP)
  set(RUSHES_BUILD_SUBGROUP ON)
endif()
set(RUSHES_BUILD_FP16 OFF)
if(RUSHES_SHADER_FP16 AND RUSHES_GLSLC_HAS_FP16)
  set(RUSHES_BUILD_FP16 ON)
endif()
set(RUSHES_BUILD_COOPMAT OFF)
if(RUSHES_SHADER_COOPMAT AND RUSHES_GLSLC_HAS_COOPMAT)
  set(RUSHES_BUILD_COOPMAT ON)
endif()

function(rs_shader list name source)
  cmake_parse_arguments(S "" "" "DEFINES" ${ARGN})
  set(spv ${CMAKE_CURRENT_BINARY_DIR}/spv/${name}.spv)
  set(defs "")
  foreach(d ${S_DEFINES})
    list(APPEND defs "-D${d}")
  endforeach()
  add_custom_command(
    OUTPUT ${spv}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/spv
    COMMAND ${RUSHES_GLSLC} --target-env=${RUSHES_VK_TARGET_ENV} -fshader-stage=compute -O
            -Werror -I ${PROJECT_SOURCE_DIR}/shaders ${defs} -MD -MF ${spv}.d
            ${source} -o ${spv}
    DEPENDS ${source}
    DEPFILE ${spv}.d
    COMMENT "glslc ${name}"
    VERBATIM)
  set(${list} ${${list}} ${name} ${spv} PARENT_SCOPE)
endfunction()

function(rs_shader_embed out_c list)
  set(pairs ${${list}})
  set(spvs "")
  set(names "")
  while(pairs)
    list(POP_FRONT pairs n f)
    list(APPEND names ${n})
    list(APPEND spvs ${f})
  endwhile()
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} "-DNAMES=${names}" "-DFILES=${spvs}"
            -P ${PROJECT_SOURCE_DIR}/cmake/shaders_embed.cmake
    DEPENDS ${spvs} ${PROJECT_SOURCE_DIR}/cmake/shaders_embed.cmake
    COMMENT "embedding SPIR-V shaders"
    VERBATIM)
endfunction()
