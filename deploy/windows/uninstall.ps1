#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Remove the "mt5-gateway" Windows service and its virtual environment.

.DESCRIPTION
    Stops the service (orders in flight finish first), ends the terminal it started (which
    runs on in session 0, where nobody can close it), unregisters the service, removes the
    firewall rules install.ps1 made and the virtual environment. The data directory
    (configuration, secret, CURVE keys, journal, kill-switch state, logs, audit trail) is kept
    unless -RemoveData is given: keep it to reinstall later without new keys, and for the audit.

.PARAMETER InstallDir
    The directory install.ps1 put the virtual environment in.

.PARAMETER DataDir
    The data directory install.ps1 used.

.PARAMETER RemoveData
    Also delete the data directory. Asks for confirmation unless -Confirm:$false.

.EXAMPLE
    .\uninstall.ps1

.EXAMPLE
    .\uninstall.ps1 -RemoveData
#>
[CmdletBinding(SupportsShouldProcess, ConfirmImpact = 'High')]
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'mt5-bridge'),
    [string]$DataDir = (Join-Path $env:ProgramData 'mt5-bridge'),
    [switch]$RemoveData
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'mt5-gateway'
$ConfigFile = Join-Path $DataDir 'gateway.toml'
$VenvDir = Join-Path $InstallDir 'venv'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Invoke-Quietly([string]$FilePath, [string[]]$ArgumentList) {
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = @(& $FilePath @ArgumentList 2>&1 | ForEach-Object { "$_" })
        return @{ Code = $LASTEXITCODE; Output = $output }
    }
    finally {
        $ErrorActionPreference = $previous
    }
}

$service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($service) {
    if ($service.Status -ne 'Stopped') {
        Write-Step "Stopping $ServiceName (orders in flight finish first)"
        Stop-Service -Name $ServiceName
    }
    # The [mt5] path install.ps1 wrote (a 'literal string'): the terminal the service started.
    $config = if (Test-Path -LiteralPath $ConfigFile) { [System.IO.File]::ReadAllText($ConfigFile) } else { '' }
    if ($config -match "(?ms)^\[mt5\][^\[]*?^[ \t]*path[ \t]*=[ \t]*'([^']+)'") {
        $terminal = $Matches[1]
        Get-Process -Name 'terminal64' -ErrorAction SilentlyContinue |
            Where-Object { $_.SessionId -eq 0 -and $_.Path -and $_.Path -ieq $terminal } | ForEach-Object {
                Write-Step "Ending the terminal the service started (pid $($_.Id), $terminal)"
                Stop-Process -Id $_.Id -Force
            }
    }
    Write-Step "Unregistering $ServiceName"
    if (Test-Path -LiteralPath $VenvPython) {
        $result = Invoke-Quietly $VenvPython @('-m', 'gtw_server.service', 'remove')
        $result.Output | ForEach-Object { Write-Host "    $_" }
    }
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        # No venv any more, or pywin32 failed: the Service Control Manager can do it alone.
        $result = Invoke-Quietly 'sc.exe' @('delete', $ServiceName)
        $result.Output | ForEach-Object { Write-Host "    $_" }
    }
    if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
        Write-Warning "$ServiceName is marked for deletion; close services.msc (or reboot) to finish."
    }
}
else {
    Write-Step "$ServiceName is not registered"
}

Write-Step 'Removing the firewall rules'
foreach ($rule in @('mt5-gateway-zmq', 'mt5-gateway-metrics')) {
    Get-NetFirewallRule -Name $rule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
}

if (Test-Path -LiteralPath $InstallDir) {
    Write-Step "Removing $InstallDir"
    Remove-Item -LiteralPath $InstallDir -Recurse -Force
}

if ($RemoveData) {
    if (Test-Path -LiteralPath $DataDir) {
        $what = 'the secret, the CURVE keys, the journal and the audit trail'
        if ($PSCmdlet.ShouldProcess($DataDir, "Delete $what")) {
            Remove-Item -LiteralPath $DataDir -Recurse -Force
            Write-Step "Removed $DataDir"
        }
    }
}
else {
    Write-Step "Kept $DataDir (config, secret, keys, journal, logs, audit trail)"
    Write-Host '    Delete it yourself, or run again with -RemoveData.'
}
Write-Host ('    The service account keeps "Log on as a service" (secpol.msc > Local Policies > ' +
    'User Rights Assignment) and write access to the terminal''s folder; revoke them there if you wish.')
Write-Host 'Uninstalled.' -ForegroundColor Green
