#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Install the MT5 bridge gateway as the Windows service "mt5-gateway".

.DESCRIPTION
    Creates a virtual environment, installs the gateway with the MetaTrader5 binding
    (pip install "<source>[mt5]"), writes gateway.toml from deploy\gateway.example.toml if there
    is none, generates the shared signing secret and the gateway's CURVE keys, restricts their
    permissions to SYSTEM and Administrators, registers the service (automatic start, restart
    on failure), optionally opens the firewall to the given client addresses, and starts it.

    Safe to run again: what exists is kept (config, secret, keys), the package is upgraded, the
    service is updated. Run it again after an upgrade of the source.

    See docs\OPERATIONS.md for the whole procedure.

.PARAMETER InstallDir
    Where the virtual environment goes (InstallDir\venv).

.PARAMETER DataDir
    Configuration, secret, keys, journal, logs. The service's default config location is
    %PROGRAMDATA%\mt5-bridge\gateway.toml.

.PARAMETER Python
    A 64-bit python.exe, 3.11 or newer, installed for all users. Default: the py launcher's
    newest 64-bit Python 3, else python.exe on PATH.

.PARAMETER Source
    What to install: a wheel (mt5_bridge-*.whl) or the repository directory.
    Default: the repository this script is in (..\..).

.PARAMETER Bind
    The ZeroMQ endpoint written into gateway.toml when it is created (CURVE is on, so a
    non-loopback address is allowed). Its port is also the firewall rule's.

.PARAMETER AllowFrom
    Client (strategy node) addresses or subnets the firewall admits to the gateway's port.
    None: no firewall rule is made.

.PARAMETER MetricsPort
    Serve Prometheus metrics on this port (written into gateway.toml when it is created).
    0: off.

.PARAMETER MetricsAllowFrom
    Prometheus server addresses admitted to the metrics port. When given, metrics listen on
    all interfaces (metrics_host = "0.0.0.0"); else on 127.0.0.1 only.

.PARAMETER ServiceCredential
    Run the service as this Windows account (the one that runs the MT5 terminal) instead of
    LocalSystem. The account needs the "Log on as a service" right. Give it again on every
    run: the data directory's permissions are rewritten each time.

.PARAMETER NoStart
    Install and configure, but do not start the service.

.EXAMPLE
    .\install.ps1 -AllowFrom 203.0.113.10,203.0.113.11

.EXAMPLE
    .\install.ps1 -Source C:\dist\mt5_bridge-0.1.0-py3-none-any.whl -MetricsPort 9464 -MetricsAllowFrom 198.51.100.5
#>
[CmdletBinding()]
param(
    [string]$InstallDir = (Join-Path $env:ProgramFiles 'mt5-bridge'),
    [string]$DataDir = (Join-Path $env:ProgramData 'mt5-bridge'),
    [string]$Python = '',
    [string]$Source = '',
    [string]$Bind = 'tcp://0.0.0.0:5555',
    [string[]]$AllowFrom = @(),
    [ValidateRange(0, 65535)][int]$MetricsPort = 0,
    [string[]]$MetricsAllowFrom = @(),
    [System.Management.Automation.PSCredential]$ServiceCredential = $null,
    [switch]$NoStart
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ServiceName = 'mt5-gateway'
$ServiceKey = "HKLM:\SYSTEM\CurrentControlSet\Services\$ServiceName"
$FirewallRule = 'mt5-gateway-zmq'
$MetricsFirewallRule = 'mt5-gateway-metrics'
$System = '*S-1-5-18'          # LocalSystem, by SID: the same on every Windows language
$Administrators = '*S-1-5-32-544'

$VenvDir = Join-Path $InstallDir 'venv'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'
$ConfigFile = Join-Path $DataDir 'gateway.toml'
$SecretFile = Join-Path $DataDir 'secret.txt'
$KeysDir = Join-Path $DataDir 'keys'
$ClientsDir = Join-Path $DataDir 'clients'
$StateDir = Join-Path $DataDir 'data'
$LogFile = Join-Path $StateDir 'gateway.log'
$ExampleConfig = Join-Path $PSScriptRoot '..\gateway.example.toml'
$Utf8NoBom = New-Object System.Text.UTF8Encoding($false)

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Write-Done([string]$Message) {
    Write-Host "    $Message"
}

# Run a program; throw with its output when it fails. (Native programs do not honour
# $ErrorActionPreference, and their stderr must not be mistaken for a PowerShell error.)
function Invoke-Checked {
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [switch]$Quiet
    )
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = @(& $FilePath @ArgumentList 2>&1 | ForEach-Object { "$_" })
        $code = $LASTEXITCODE
    }
    finally {
        $ErrorActionPreference = $previous
    }
    if ($code -ne 0) {
        throw ("'$FilePath $($ArgumentList -join ' ')' failed with exit code $code`n" +
            ($output -join "`n"))
    }
    if (-not $Quiet) {
        $output | ForEach-Object { Write-Done $_ }
    }
    return
}

# The last line a Python one-liner prints, or $null when it fails. $Code must not contain
# double quotes (Windows PowerShell 5.1 mangles them in native arguments).
function Get-PythonOutput([string]$Exe, [string]$Code, [string[]]$Prefix = @()) {
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = @(& $Exe @Prefix -c $Code 2>$null)
        $code = $LASTEXITCODE
    }
    finally {
        $ErrorActionPreference = $previous
    }
    if ($code -ne 0 -or $output.Length -eq 0) {
        return $null
    }
    return ([string]$output[$output.Length - 1]).Trim()
}

function Resolve-BasePython([string]$Requested) {
    $whoAmI = 'import sys; print(sys.executable)'
    $found = $null
    if ($Requested) {
        $found = Get-PythonOutput $Requested $whoAmI
    }
    elseif (Get-Command 'py.exe' -ErrorAction SilentlyContinue) {
        $found = Get-PythonOutput 'py.exe' $whoAmI @('-3-64')   # the newest 64-bit Python 3
    }
    else {
        $command = Get-Command 'python.exe' -ErrorAction SilentlyContinue |
            Where-Object { $_.Source -notlike '*\WindowsApps\*' } | Select-Object -First 1
        if ($command) {
            $found = Get-PythonOutput $command.Source $whoAmI
        }
    }
    if (-not $found) {
        throw ('No Python found. Install 64-bit Python 3.11 or newer from python.org "for all ' +
            'users", or pass -Python C:\path\to\python.exe')
    }
    if ($found -like '*\WindowsApps\*') {
        throw "$found is the Microsoft Store Python, which a service cannot use; install Python from python.org for all users."
    }
    $ok = Get-PythonOutput $found 'import sys, struct; print(sys.version_info >= (3, 11) and struct.calcsize(''P'') == 8)'
    if ($ok -ne 'True') {
        throw "$found is not a 64-bit Python 3.11 or newer (the MetaTrader5 package needs both)."
    }
    if ($env:USERPROFILE -and $found -like "$env:USERPROFILE\*") {
        Write-Warning "$found is inside a user profile; a service account may not be able to read it. Prefer a Python installed for all users (C:\Program Files\Python3xx)."
    }
    return $found
}

function ConvertTo-TomlLiteral([string]$Text) {
    if ($Text -match "['\r\n]") {
        throw "cannot write '$Text' into gateway.toml: it contains a quote or a line break"
    }
    return "'$Text'"
}

# Uncomment and set one key of deploy\gateway.example.toml. The example has exactly one
# '# key = value' line per key; tests\test_deploy_configs.py checks that it stays so.
function Set-TomlValue([string]$Text, [string]$Key, [string]$Value) {
    $pattern = "(?m)^[ \t]*#?[ \t]*$([regex]::Escape($Key))[ \t]*=.*$"
    $found = [regex]::Matches($Text, $pattern).Count
    if ($found -ne 1) {
        throw "gateway.example.toml should have one line for '$Key'; it has $found"
    }
    return [regex]::Replace($Text, $pattern, "$Key = $Value".Replace('$', '$$'))
}

function Set-PrivateAcl([string]$Path, [string]$Inherit, [string]$ServiceRights) {
    # Only SYSTEM and Administrators (and the service account, if one is given).
    $grants = @("${System}:${Inherit}F", "${Administrators}:${Inherit}F")
    if ($ServiceCredential) {
        # icacls does not read ".\user"; it reads "COMPUTER\user".
        $account = $ServiceCredential.UserName -replace '^\.\\', "$env:COMPUTERNAME\"
        $grants += "${account}:${Inherit}$ServiceRights"
    }
    $arguments = @($Path, '/inheritance:r', '/grant:r') + $grants + @('/Q')
    Invoke-Checked 'icacls.exe' $arguments -Quiet
}

function Get-BindPort([string]$Endpoint) {
    if ($Endpoint -match ':(\d{1,5})$') {
        return [int]$Matches[1]
    }
    throw "cannot read a TCP port from -Bind $Endpoint"
}

# -- 1. Python and the package ----------------------------------------------------------------

Write-Step 'Checking Python'
$BasePython = Resolve-BasePython $Python
Write-Done "using $BasePython"

if (-not $Source) {
    $Source = (Resolve-Path (Join-Path $PSScriptRoot '..\..')).Path
}
if (Test-Path -LiteralPath $Source -PathType Container) {
    if (-not (Test-Path -LiteralPath (Join-Path $Source 'pyproject.toml'))) {
        throw "$Source is not the project's repository (no pyproject.toml); pass -Source with a wheel or the repository path"
    }
}
elseif (-not ((Test-Path -LiteralPath $Source -PathType Leaf) -and $Source.EndsWith('.whl'))) {
    throw "-Source $Source is neither a wheel (.whl) nor the repository directory"
}
$Source = (Resolve-Path -LiteralPath $Source).Path
if (-not (Test-Path -LiteralPath $ExampleConfig)) {
    throw "$ExampleConfig is missing: keep this script inside the project's deploy folder"
}

$existing = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($existing -and $existing.Status -ne 'Stopped') {
    Write-Step "Stopping the running $ServiceName service (orders in flight finish first)"
    Stop-Service -Name $ServiceName
}

Write-Step "Virtual environment in $VenvDir"
if (Test-Path -LiteralPath $VenvPython) {
    Write-Done 'exists; kept'
}
else {
    New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
    Invoke-Checked $BasePython @('-m', 'venv', $VenvDir)
    Write-Done 'created'
}

Write-Step "Installing $Source with the mt5 extra"
Invoke-Checked $VenvPython @('-m', 'pip', 'install', '--quiet', '--upgrade', 'pip>=24') -Quiet
$pipArguments = @('-m', 'pip', 'install', '--upgrade', "$($Source)[mt5]")
$constraints = Join-Path $Source 'constraints.txt'
if ((Test-Path -LiteralPath $Source -PathType Container) -and (Test-Path -LiteralPath $constraints)) {
    $pipArguments += @('-c', $constraints)   # the versions the project was tested with
}
Invoke-Checked $VenvPython $pipArguments -Quiet
$version = Get-PythonOutput $VenvPython 'from protocol import VERSION; print(VERSION)'
Write-Done "mt5-bridge $version installed"

# pywin32 needs its post-install step only when its modules cannot load (its maintainers
# advise against running it in a virtual environment otherwise).
$pywin32Check = 'import win32service, win32serviceutil, servicemanager; print(1)'
if (Get-PythonOutput $VenvPython $pywin32Check) {
    Write-Done 'pywin32 loads; its post-install step is not needed'
}
else {
    Write-Step 'pywin32 cannot load its modules: running its post-install step'
    $postInstall = Join-Path $VenvDir 'Scripts\pywin32_postinstall.py'
    if (Test-Path -LiteralPath $postInstall) {
        Invoke-Checked $VenvPython @($postInstall, '-install')
    }
    else {
        Invoke-Checked $VenvPython @('-m', 'pywin32_postinstall', '-install')
    }
    if (-not (Get-PythonOutput $VenvPython $pywin32Check)) {
        throw 'pywin32 still cannot be imported after its post-install step'
    }
}
if (-not (Get-PythonOutput $VenvPython 'import MetaTrader5; print(MetaTrader5.__version__)')) {
    throw 'the MetaTrader5 package cannot be imported (is this 64-bit Python supported by it?)'
}

# -- 2. Data directory, secret, keys, config ------------------------------------------------

Write-Step "Data directory $DataDir (SYSTEM and Administrators only)"
New-Item -ItemType Directory -Force -Path $DataDir | Out-Null
Set-PrivateAcl $DataDir '(OI)(CI)' 'M'
foreach ($dir in @($KeysDir, $ClientsDir, $StateDir)) {
    New-Item -ItemType Directory -Force -Path $dir | Out-Null   # inherit the restricted ACL
}
Write-Done 'created; permissions restricted'

Write-Step "Shared secret $SecretFile"
if (Test-Path -LiteralPath $SecretFile) {
    Write-Done 'exists; kept'
}
else {
    $bytes = New-Object byte[] 32
    $rng = [System.Security.Cryptography.RandomNumberGenerator]::Create()
    try {
        $rng.GetBytes($bytes)
    }
    finally {
        $rng.Dispose()
    }
    $hex = -join ($bytes | ForEach-Object { $_.ToString('x2') })
    # No byte-order mark, no newline: the secret is these 64 characters exactly.
    [System.IO.File]::WriteAllText($SecretFile, $hex, $Utf8NoBom)
    Write-Done 'generated (256 random bits)'
}
Set-PrivateAcl $SecretFile '' 'R'

Write-Step "CURVE keys in $KeysDir"
if (Test-Path -LiteralPath (Join-Path $KeysDir 'gateway.key_secret')) {
    Write-Done 'gateway.key_secret exists; kept'
}
else {
    Invoke-Checked $VenvPython @('-m', 'gtw_server', 'keygen', $KeysDir, '--name', 'gateway')
}
Write-Done "allowed clients: put each strategy node's NODE.key into $ClientsDir"

Write-Step "Configuration $ConfigFile"
if (Test-Path -LiteralPath $ConfigFile) {
    Write-Done 'exists; kept (edit it, then restart the service)'
}
else {
    $text = [System.IO.File]::ReadAllText((Resolve-Path -LiteralPath $ExampleConfig).Path)
    $text = Set-TomlValue $text 'terminal' '"mt5"'
    $text = Set-TomlValue $text 'bind' "`"$Bind`""
    $text = Set-TomlValue $text 'data_dir' (ConvertTo-TomlLiteral $StateDir)
    $text = Set-TomlValue $text 'secret_file' (ConvertTo-TomlLiteral $SecretFile)
    $text = Set-TomlValue $text 'log_file' '"gateway.log"'
    $text = Set-TomlValue $text 'curve_secret_key' (ConvertTo-TomlLiteral (Join-Path $KeysDir 'gateway.key_secret'))
    $text = Set-TomlValue $text 'curve_clients' (ConvertTo-TomlLiteral $ClientsDir)
    if ($MetricsPort -ne 0) {
        $text = Set-TomlValue $text 'metrics_port' "$MetricsPort"
        if (@($MetricsAllowFrom).Length -gt 0) {
            $text = Set-TomlValue $text 'metrics_host' '"0.0.0.0"'
        }
    }
    [System.IO.File]::WriteAllText($ConfigFile, $text, $Utf8NoBom)
    Write-Done 'written from gateway.example.toml (terminal = "mt5", CURVE on)'
}

# -- 3. The service -------------------------------------------------------------------------

Write-Step "Registering the $ServiceName service (automatic start)"
# pywin32 installs the service, or updates it when it exists already.
Invoke-Checked $VenvPython @('-m', 'gtw_server.service', '--startup', 'auto', 'install')
if (-not (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
    throw "the $ServiceName service was not registered; see the output above"
}

if ($ServiceCredential) {
    Write-Step "Running the service as $($ServiceCredential.UserName)"
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'"
    $result = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments @{
        StartName     = $ServiceCredential.UserName
        StartPassword = $ServiceCredential.GetNetworkCredential().Password
    }
    if ($result.ReturnValue -ne 0) {
        throw "setting the service account failed (Win32_Service.Change returned $($result.ReturnValue))"
    }
    Write-Done 'done; the account needs the "Log on as a service" right (secpol.msc)'
}

Write-Step 'Service environment (registry, REG_MULTI_SZ)'
# The config file, and a PATH on which the service host (pythonservice.exe, copied into the
# venv by pywin32) finds python3XX.dll and pywintypes3XX.dll.
$basePrefix = Get-PythonOutput $VenvPython 'import sys; print(sys.base_prefix)'
$machinePath = [Environment]::GetEnvironmentVariable('Path', 'Machine')
$servicePath = (@($basePrefix, (Join-Path $VenvDir 'Lib\site-packages\pywin32_system32'), $machinePath) |
        Where-Object { $_ }) -join ';'
$environment = @("MT5_BRIDGE_GATEWAY_CONFIG=$ConfigFile", "PATH=$servicePath")
New-ItemProperty -Path $ServiceKey -Name 'Environment' -PropertyType MultiString -Value $environment -Force | Out-Null
Write-Done "MT5_BRIDGE_GATEWAY_CONFIG=$ConfigFile"

Write-Step 'Restart on failure (5 s, 10 s, then every 60 s; counter reset after a day)'
Invoke-Checked 'sc.exe' @('failure', $ServiceName, 'reset=', '86400', 'actions=', 'restart/5000/restart/10000/restart/60000') -Quiet
Invoke-Checked 'sc.exe' @('failureflag', $ServiceName, '1') -Quiet
Write-Done 'configured'

# -- 4. Firewall ------------------------------------------------------------------------------

$port = Get-BindPort $Bind
if (@($AllowFrom).Length -gt 0) {
    Write-Step "Firewall: TCP $port from $($AllowFrom -join ', ')"
    Get-NetFirewallRule -Name $FirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -Name $FirewallRule -DisplayName 'MT5 bridge gateway (ZeroMQ)' `
        -Direction Inbound -Action Allow -Protocol TCP -LocalPort $port `
        -RemoteAddress $AllowFrom -Profile Any | Out-Null
    Write-Done "rule $FirewallRule"
}
if ($MetricsPort -ne 0 -and @($MetricsAllowFrom).Length -gt 0) {
    Write-Step "Firewall: metrics TCP $MetricsPort from $($MetricsAllowFrom -join ', ')"
    Get-NetFirewallRule -Name $MetricsFirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -Name $MetricsFirewallRule -DisplayName 'MT5 bridge gateway (metrics)' `
        -Direction Inbound -Action Allow -Protocol TCP -LocalPort $MetricsPort `
        -RemoteAddress $MetricsAllowFrom -Profile Any | Out-Null
    Write-Done "rule $MetricsFirewallRule"
}

# -- 5. Start -------------------------------------------------------------------------------

$started = $false
if (-not $NoStart) {
    Write-Step "Starting $ServiceName"
    $logStart = if (Test-Path -LiteralPath $LogFile) { @(Get-Content -LiteralPath $LogFile).Length } else { 0 }
    Start-Service -Name $ServiceName
    $deadline = (Get-Date).AddSeconds(90)
    $verdict = $null
    while ((Get-Date) -lt $deadline -and -not $verdict) {
        Start-Sleep -Seconds 2
        if (Test-Path -LiteralPath $LogFile) {
            $new = @(Get-Content -LiteralPath $LogFile | Select-Object -Skip $logStart)
            $verdict = $new | Where-Object { $_ -match 'gateway ready|cannot start|service failed' } |
                Select-Object -First 1
        }
        if ((Get-Service -Name $ServiceName).Status -eq 'Stopped') {
            break
        }
    }
    if ($verdict -and $verdict -match 'gateway ready') {
        $started = $true
        Write-Done ($verdict -replace '^.*\| gateway \| ', '')
    }
    else {
        Write-Warning "the gateway did not report ready. Last lines of ${LogFile}:"
        if (Test-Path -LiteralPath $LogFile) {
            Get-Content -LiteralPath $LogFile -Tail 20 | ForEach-Object { Write-Host "    $_" }
        }
        Write-Warning "Also look in the Event Log: Get-WinEvent -FilterHashtable @{LogName='Application'; ProviderName='$ServiceName'} -MaxEvents 10"
    }
}

# -- 6. What to do next ---------------------------------------------------------------------

$gatewayPublic = Join-Path $KeysDir 'gateway.key'
$hostName = [System.Net.Dns]::GetHostName()
Write-Host ''
Write-Host 'Installed.' -ForegroundColor Green
Write-Host "  service      $ServiceName ($(if ($started) { 'running' } else { 'not started' }); Get-Service $ServiceName)"
Write-Host "  config       $ConfigFile"
Write-Host "  log          $LogFile   (audit trail: $(Join-Path $StateDir 'audit.jsonl'))"
Write-Host "  venv         $VenvDir"
Write-Host ''
Write-Host 'Copy to each strategy node (over a secure channel):' -ForegroundColor Yellow
Write-Host "  $SecretFile   -> the node's secret file (chmod 600), the shared signing secret"
Write-Host "  $gatewayPublic   -> keys/gateway.key on the node (public; not secret)"
Write-Host 'On each node, make its own key pair and send back only the public half:'
Write-Host '  python -m gtw_server keygen keys --name NODE'
Write-Host "  copy NODE.key into $ClientsDir (picked up within seconds; no restart)"
Write-Host "Node config (~/.config/mt5-bridge/config.toml), see deploy/client.example.toml:"
Write-Host '  [bridge]'
Write-Host "  endpoint = `"tcp://${hostName}:$port`""
Write-Host '  secret_file = "secret"'
Write-Host '  curve_server_key = "keys/gateway.key"'
Write-Host '  curve_client_cert = "keys/NODE.key_secret"'
Write-Host 'Then, from the node: mt5-bridge ping'
