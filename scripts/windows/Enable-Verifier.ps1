#Requires -Version 5.1
<#
.SYNOPSIS
Turns Driver Verifier on for rawnic.sys: the standard settings plus the
NDIS/WIFI rules.

.DESCRIPTION
Run it in PowerShell started with "Run as administrator":

    powershell -ExecutionPolicy Bypass -File .\Enable-Verifier.ps1

It runs

    verifier /ruleclasses 1 2 4 5 6 8 9 12 18 22 /driver rawnic.sys

Rule classes 1 2 4 5 6 8 9 12 18 are what "verifier /standard" selects
(special pool, force IRQL checking, pool tracking, I/O verification,
deadlock detection, DMA checking, security checks, miscellaneous checks, DDI
compliance checking); 22 is NDIS/WIFI verification (flag 0x200000, bit 21:
a rule class's ID is its flag's bit number plus one). /ruleclasses needs
Windows 10 1803 or later. The settings take effect after a reboot; the
script then shows "verifier /querysettings" (what the next boot verifies)
and a summary of "verifier /query" (what runs now, with its counters).

With -Reset it turns Driver Verifier off instead (verifier /reset), which also
needs a reboot.
#>
[CmdletBinding()]
param(
    [switch]$Reset
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$script:Step = 'starting'

function Write-Step([string]$Text) {
    $script:Step = $Text
    Write-Host "==> $Text" -ForegroundColor Cyan
}

function Stop-Script([string]$Text) {
    Write-Host "Enable-Verifier failed: $Text" -ForegroundColor Red
    exit 1
}

trap {
    Stop-Script "$($script:Step): $($_.Exception.Message)"
}

Write-Step 'Checking that this runs as an administrator'
$Identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$Principal = New-Object Security.Principal.WindowsPrincipal($Identity)
if (-not $Principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Stop-Script 'this needs an administrator: start PowerShell with "Run as administrator" and run the script again.'
}

# verifier exits with 2 when it changed the settings (they need a reboot),
# 0 when there was nothing to change, and 1 on an error.
if ($Reset) {
    Write-Step 'Turning Driver Verifier off: verifier /reset'
    verifier /reset
    if ($LASTEXITCODE -ne 0 -and $LASTEXITCODE -ne 2) {
        Stop-Script "verifier /reset failed (exit status $LASTEXITCODE)."
    }
} else {
    Write-Step 'Verifying rawnic.sys with the standard settings and NDIS/WIFI verification'
    verifier /ruleclasses 1 2 4 5 6 8 9 12 18 22 /driver rawnic.sys
    if ($LASTEXITCODE -ne 0 -and $LASTEXITCODE -ne 2) {
        Stop-Script ("verifier /ruleclasses ... /driver rawnic.sys failed (exit status $LASTEXITCODE). " +
            '/ruleclasses needs Windows 10 1803 or later.')
    }
}

Write-Step 'The settings for the next boot: verifier /querysettings'
verifier /querysettings
if ($LASTEXITCODE -ne 0) {
    Stop-Script "verifier /querysettings failed (exit status $LASTEXITCODE)."
}

Write-Step 'What Driver Verifier checks now: verifier /query'
$Query = @(verifier /query)
if ($LASTEXITCODE -ne 0) {
    Stop-Script "verifier /query failed (exit status $LASTEXITCODE)."
}
$Rawnic = @($Query | Select-String -SimpleMatch 'rawnic.sys')
if ($Rawnic.Count -gt 0) {
    Write-Host 'rawnic.sys is being verified in this boot:'
    $Query | ForEach-Object { Write-Host "    $_" }
} else {
    Write-Host 'rawnic.sys is not verified in this boot (verifier /query lists it after the reboot).'
}

Write-Host 'Reboot for the new settings to take effect; then "verifier /query" shows the counters.' -ForegroundColor Yellow
exit 0
