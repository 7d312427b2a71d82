#Requires -Version 5.1
<#
.SYNOPSIS
Installs rawnic from this package on a test machine.

.DESCRIPTION
Run it from the package folder (a copy of target/package), in PowerShell
started with "Run as administrator":

    powershell -ExecutionPolicy Bypass -File .\Install-Rawnic.ps1

It checks that it runs as an administrator and that test signing is on,
trusts the package's test certificate (rawnic-test.cer, in the machine's
Root and TrustedPublisher stores), stages the driver (pnputil /add-driver),
installs the protocol and binds it to the adapters (netcfg), waits for
\\.\RawNic and the bindings (rawnicctl wait), and runs "rawnicctl
selftest". Each step says what it does; the
first one that fails stops the script with a message and exit status 1 (or
rawnicctl's own status when the self-test fails).

.PARAMETER DeviceTimeoutSeconds
How long to wait for \\.\RawNic after the install, and then for the
bindings (default 30 seconds each).
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 600)]
    [int]$DeviceTimeoutSeconds = 30
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$script:Step = 'starting'

function Write-Step([string]$Text) {
    $script:Step = $Text
    Write-Host "==> $Text" -ForegroundColor Cyan
}

function Stop-Script([string]$Text, [int]$Code = 1) {
    Write-Host "Install-Rawnic failed: $Text" -ForegroundColor Red
    Pop-Location
    exit $Code
}

# Any error a cmdlet throws stops the script with the step it happened in.
trap {
    Stop-Script "$($script:Step): $($_.Exception.Message)"
}

# The package folder is where rawnicctl.exe is run from (.\rawnicctl.exe).
Push-Location -LiteralPath $PSScriptRoot
$Inf = Join-Path $PSScriptRoot 'rawnic.inf'

Write-Step 'Checking the package files'
foreach ($File in 'rawnic.inf', 'rawnic.sys', 'rawnic.cat', 'rawnicctl.exe') {
    if (-not (Test-Path -LiteralPath (Join-Path $PSScriptRoot $File))) {
        Stop-Script "$File is missing from $PSScriptRoot. Copy the whole target/package folder."
    }
}

Write-Step 'Checking that this runs as an administrator'
$Identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$Principal = New-Object Security.Principal.WindowsPrincipal($Identity)
if (-not $Principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Stop-Script 'this needs an administrator: start PowerShell with "Run as administrator" and run the script again.'
}

Write-Step 'Checking that test signing is on (bcdedit /enum {current})'
$Boot = bcdedit /enum '{current}'
if ($LASTEXITCODE -ne 0) {
    Stop-Script "bcdedit /enum {current} failed (exit status $LASTEXITCODE)."
}
$Configured = @($Boot | Where-Object { $_ -match '^\s*testsigning\s+Yes\s*$' }).Count -gt 0
$StartOptions = (Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control').SystemStartOptions
$Running = $StartOptions -match '\bTESTSIGNING\b'
if (-not $Configured -and -not $Running) {
    Stop-Script ("test signing is off, so Windows would refuse the test-signed driver. Turn it on with " +
        "'bcdedit /set testsigning on' in an administrator prompt (with Secure Boot on, turn Secure Boot off " +
        "in the firmware settings first), reboot, and run this script again.")
}
if (-not $Running) {
    Stop-Script 'test signing is set, but this boot started without it: reboot, then run this script again.'
}
Write-Host 'Test signing is on.'

$Cer = Join-Path $PSScriptRoot 'rawnic-test.cer'
if (Test-Path -LiteralPath $Cer) {
    foreach ($Store in 'Root', 'TrustedPublisher') {
        Write-Step "Trusting rawnic-test.cer: importing it into Cert:\LocalMachine\$Store"
        $Imported = Import-Certificate -FilePath $Cer -CertStoreLocation "Cert:\LocalMachine\$Store"
        Write-Host "Imported $($Imported.Subject) ($($Imported.Thumbprint))."
    }
} else {
    Write-Host 'This package has no rawnic-test.cer: it is signed with a certificate this machine must already trust.'
}

Write-Step "Staging the driver package: pnputil /add-driver $Inf"
pnputil /add-driver $Inf
if ($LASTEXITCODE -eq 3010) {
    Write-Host 'pnputil says a reboot is needed to finish; going on.'
} elseif ($LASTEXITCODE -ne 0) {
    Stop-Script ("pnputil /add-driver failed (exit status $LASTEXITCODE). Its output above says why; " +
        "C:\Windows\INF\setupapi.dev.log has the details (a signature problem shows there).")
}

Write-Step 'Installing the protocol and binding it to the adapters: netcfg -l rawnic.inf -c p -i RAWNIC'
netcfg -l $Inf -c p -i RAWNIC
# 0x0004A020 is NETCFG_S_REBOOT: installed, and a reboot finishes the job.
if ($LASTEXITCODE -eq 0x0004A020) {
    Write-Host 'netcfg says a reboot is needed to finish; reboot, then run rawnicctl selftest.'
    Pop-Location
    exit 0
} elseif ($LASTEXITCODE -ne 0) {
    Stop-Script ("netcfg -l rawnic.inf -c p -i RAWNIC failed (exit status $LASTEXITCODE). " +
        "C:\Windows\INF\setupapi.app.log has the details.")
}

Write-Step "Waiting up to $DeviceTimeoutSeconds s for \\.\RawNic (rawnicctl version)"
$Deadline = (Get-Date).AddSeconds($DeviceTimeoutSeconds)
while ($true) {
    # Quietly: until the driver is up, rawnicctl says it cannot open the device.
    $ErrorActionPreference = 'Continue'
    $null = .\rawnicctl.exe version 2>&1
    $Status = $LASTEXITCODE
    $ErrorActionPreference = 'Stop'
    if ($Status -eq 0) {
        break
    }
    if ((Get-Date) -ge $Deadline) {
        Stop-Script ("\\.\RawNic did not appear within $DeviceTimeoutSeconds s. Check the service with " +
            "'sc query RAWNIC' and the System event log.")
    }
    Start-Sleep -Seconds 1
}

Write-Step "Waiting up to $DeviceTimeoutSeconds s for NDIS to finish binding (rawnicctl wait)"
.\rawnicctl.exe wait --timeout $DeviceTimeoutSeconds
if ($LASTEXITCODE -ne 0) {
    Stop-Script "rawnicctl wait failed (exit status $LASTEXITCODE): the bindings did not complete."
}

Write-Step 'Running the self-test: rawnicctl selftest'
.\rawnicctl.exe selftest
$SelfTest = $LASTEXITCODE
if ($SelfTest -ne 0) {
    Stop-Script "rawnicctl selftest failed (exit status $SelfTest)." $SelfTest
}
Write-Host 'rawnic is installed and passed its self-test.' -ForegroundColor Green
Pop-Location
exit 0
