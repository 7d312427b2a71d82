/*
 * bcryptprimitives.dll for Wine 8.0, which has none: Rust's standard
 * library (1.78 and later) imports ProcessPrng from it on Windows, so no
 * Rust program starts under Debian 12's Wine without it. Test use only
 * (`xtask wine`): it is never part of the package. ProcessPrng fills the
 * buffer from RtlGenRandom (advapi32's SystemFunction036), which Wine has,
 * and, like the real one, always succeeds for a valid buffer.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len != 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
