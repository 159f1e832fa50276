/* Stub for checking only (see TargetConditionals.h). */
#pragma once
#define assert(x) ((void)0)
#define static_assert _Static_assert
