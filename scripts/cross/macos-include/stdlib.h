/* Stub for checking only (see TargetConditionals.h). */
#pragma once
#include <stddef.h>
void abort(void);
