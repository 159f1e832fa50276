/* Wine 8 (Debian 12) has no bcryptprimitives.dll, where Rust's standard library (since
 * 1.78) gets random bytes: ProcessPrng. This stand-in forwards to RtlGenRandom
 * (advapi32's SystemFunction036), which Wine has. Only for running the Windows test
 * binaries under Wine; real Windows (10 and later) ships the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
