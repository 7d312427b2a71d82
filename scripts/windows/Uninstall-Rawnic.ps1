#Requires -Version 5.1
<#
.SYNOPSIS
Removes rawnic from a test machine.

.DESCRIPTION
Run it from the package folder, in PowerShell started with "Run as
administrator":

    powershell -ExecutionPolicy Bypass -File .\Uninstall-Rawnic.ps1

It uninstalls the protocol (netcfg -u RAWNIC), deletes the staged driver
package (the oemNN.inf whose original name is rawnic.inf, found with
pnputil /enum-drivers) with pnputil /delete-driver ... /uninstall, and removes
the package's test certificate (rawnic-test.cer) from the machine's Root and
TrustedPublisher stores. Each step says what it does; the first one that
fails stops the script with a message and exit status 1.
#>
[CmdletBinding()]
param()

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$script:Step = 'starting'

function Write-Step([string]$Text) {
    $script:Step = $Text
    Write-Host "==> $Text" -ForegroundColor Cyan
}

function Stop-Script([string]$Text) {
    Write-Host "Uninstall-Rawnic failed: $Text" -ForegroundColor Red
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

Write-Step 'Uninstalling the protocol: netcfg -u RAWNIC'
netcfg -u RAWNIC
# 0x0004A020 is NETCFG_S_REBOOT: removed, and a reboot finishes the job.
if ($LASTEXITCODE -eq 0x0004A020) {
    Write-Host 'netcfg says a reboot is needed to finish removing the protocol.'
} elseif ($LASTEXITCODE -ne 0) {
    Stop-Script ("netcfg -u RAWNIC failed (exit status $LASTEXITCODE): is rawnic installed? " +
        "C:\Windows\INF\setupapi.app.log has the details.")
}

Write-Step 'Finding the staged driver package: pnputil /enum-drivers'
$Listing = pnputil /enum-drivers
if ($LASTEXITCODE -ne 0) {
    Stop-Script "pnputil /enum-drivers failed (exit status $LASTEXITCODE)."
}
# pnputil prints one block per driver package, separated by blank lines; the
# labels are translated but the values are not, so look for a block that
# holds both an oemNN.inf and the original name rawnic.inf.
$Published = @()
$Block = @()
foreach ($Line in @($Listing) + '') {
    if ($Line.Trim() -eq '') {
        $Values = @($Block | ForEach-Object { ($_ -split ':', 2)[-1].Trim() })
        if ($Values -contains 'rawnic.inf') {
            $Published += @($Values | Where-Object { $_ -match '^oem\d+\.inf$' })
        }
        $Block = @()
    } else {
        $Block += $Line
    }
}
if ($Published.Count -eq 0) {
    Write-Host 'No staged rawnic.inf package: nothing to delete.'
}
foreach ($Oem in $Published) {
    Write-Step "Deleting the staged driver package: pnputil /delete-driver $Oem /uninstall"
    pnputil /delete-driver $Oem /uninstall
    if ($LASTEXITCODE -eq 3010) {
        Write-Host 'pnputil says a reboot is needed to finish.'
    } elseif ($LASTEXITCODE -ne 0) {
        Stop-Script "pnputil /delete-driver $Oem /uninstall failed (exit status $LASTEXITCODE)."
    }
}

$Cer = Join-Path $PSScriptRoot 'rawnic-test.cer'
if (Test-Path -LiteralPath $Cer) {
    $Thumbprint = (New-Object Security.Cryptography.X509Certificates.X509Certificate2($Cer)).Thumbprint
    foreach ($Store in 'Root', 'TrustedPublisher') {
        Write-Step "Removing rawnic-test.cer ($Thumbprint) from Cert:\LocalMachine\$Store"
        $Found = @(Get-ChildItem -LiteralPath "Cert:\LocalMachine\$Store" | Where-Object { $_.Thumbprint -eq $Thumbprint })
        foreach ($Cert in $Found) {
            Remove-Item -LiteralPath $Cert.PSPath
        }
        Write-Host "Removed $($Found.Count) certificate(s)."
    }
} else {
    Write-Host 'This package has no rawnic-test.cer: no test certificate to remove.'
}

Write-Host 'rawnic is uninstalled.' -ForegroundColor Green
exit 0
