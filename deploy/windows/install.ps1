#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Install the MT5 bridge gateway as the Windows service "mt5-gateway".

.DESCRIPTION
    Creates a virtual environment, installs the gateway with the MetaTrader5 binding
    (pip install "<source>[mt5]"), writes gateway.toml from deploy\gateway.example.toml if there
    is none, generates the shared signing secret and the gateway's CURVE keys, restricts their
    permissions to SYSTEM, Administrators and the service account, registers the service
    (automatic start, restart on failure), opens the firewall to the given client addresses,
    and starts it.

    The service runs as the trader's Windows account, never LocalSystem, and the gateway starts
    the terminal itself: a new gateway.toml gets terminal = "mt5", [mt5] path = terminal64.exe
    and portable = true. The MetaTrader5 package reaches only a terminal of the same user in
    the same Windows session; a service runs in session 0, where no one is logged in, so a
    terminal the trader started on a desktop is out of its reach, while one the gateway starts
    is not, even after a reboot with no one logged in. Portable mode keeps the terminal's data
    (login, saved password, settings) beside terminal64.exe rather than in a user profile: on a
    first install the terminal is opened once, in portable mode, as the service account, for
    the trader to log in and set it up.

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
    Client (strategy node) addresses or subnets the firewall admits to the gateway's port
    (rule mt5-gateway-zmq), and no others. None: no rule is made (an existing one is kept),
    with a warning.

.PARAMETER MetricsPort
    Serve Prometheus metrics on this port (written into gateway.toml when it is created).
    0: off.

.PARAMETER MetricsAllowFrom
    Prometheus server addresses admitted to the metrics port. When given, metrics listen on
    all interfaces (metrics_host = "0.0.0.0"); else on 127.0.0.1 only.

.PARAMETER ServiceCredential
    The Windows account the service runs as, e.g. (Get-Credential .\trader): the trader's
    account, which owns the terminal's portable data. Asked for when not given, unless the
    service already runs as an account other than LocalSystem (then that one is kept).
    LocalSystem, LocalService and NetworkService are refused. The account is granted "Log on
    as a service", and write access to the terminal's folder (portable data lives there).

.PARAMETER TerminalPath
    The terminal64.exe the gateway starts, written into a new gateway.toml as [mt5] path.
    Default: the one an existing gateway.toml names; else the only terminal64.exe running or
    installed under Program Files (with several, pass this).

.PARAMETER SkipTerminalSetup
    When gateway.toml is new, do not open the terminal for its first set-up (do it yourself:
    see docs\OPERATIONS.md).

.PARAMETER NoStart
    Install and configure, but do not start the service.

.EXAMPLE
    .\install.ps1 -AllowFrom 203.0.113.10,203.0.113.11 -ServiceCredential (Get-Credential .\trader)

.EXAMPLE
    .\install.ps1 -Source C:\dist\mt5_bridge-0.1.0-py3-none-any.whl -AllowFrom 203.0.113.10 -MetricsPort 9464 -MetricsAllowFrom 198.51.100.5
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
    [string]$TerminalPath = '',
    [switch]$SkipTerminalSetup,
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
# LocalSystem, LocalService, NetworkService: none can reach a trader's terminal, and a
# terminal started as one of them would run with its rights.
$BuiltInServiceAccounts = @('S-1-5-18', 'S-1-5-19', 'S-1-5-20')

$VenvDir = Join-Path $InstallDir 'venv'
$VenvPython = Join-Path $VenvDir 'Scripts\python.exe'
$ConfigFile = Join-Path $DataDir 'gateway.toml'
$SecretFile = Join-Path $DataDir 'secret.txt'
$KeysDir = Join-Path $DataDir 'keys'
$ClientsDir = Join-Path $DataDir 'clients'
$StateDir = Join-Path $DataDir 'data'
# On Windows the gateway names each log file by its start time, and never renames it.
$LogPattern = 'gateway.*.log'
$ExampleConfig = Join-Path $PSScriptRoot '..\gateway.example.toml'
$Utf8NoBom = New-Object System.Text.UTF8Encoding($false)
$Warnings = New-Object System.Collections.Generic.List[string]
$ServiceAccount = $null
$ServiceSid = $null

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Write-Done([string]$Message) {
    Write-Host "    $Message"
}

# A warning now, and again at the end, where it cannot scroll away.
function Add-Warning([string]$Message) {
    Write-Warning $Message
    $Warnings.Add($Message)
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
# double quotes (Windows PowerShell 5.1 mangles them in native arguments): pass values as
# $Arguments, which the code reads from sys.argv[1:].
function Get-PythonOutput([string]$Exe, [string]$Code, [string[]]$Prefix = @(), [string[]]$Arguments = @()) {
    $previous = $ErrorActionPreference
    $ErrorActionPreference = 'Continue'
    try {
        $output = @(& $Exe @Prefix -c $Code @Arguments 2>$null)
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
    # Only SYSTEM, Administrators and the service account.
    $grants = @("${System}:${Inherit}F", "${Administrators}:${Inherit}F", "*${ServiceSid}:${Inherit}$ServiceRights")
    $arguments = @($Path, '/inheritance:r', '/grant:r') + $grants + @('/Q')
    Invoke-Checked 'icacls.exe' $arguments -Quiet
}

function Get-BindPort([string]$Endpoint) {
    if ($Endpoint -match ':(\d{1,5})$') {
        return [int]$Matches[1]
    }
    throw "cannot read a TCP port from -Bind $Endpoint"
}

function Test-LoopbackEndpoint([string]$Endpoint) {
    return $Endpoint -match '^tcp://(127\.[0-9.]+|localhost|\[::1\]):'
}

# ".\user" and "user" are local accounts; "COMPUTER\user" is what every tool here reads.
function Get-QualifiedAccount([string]$UserName) {
    if ($UserName -match '^\.\\') {
        return $UserName -replace '^\.\\', "$env:COMPUTERNAME\"
    }
    if ($UserName -notmatch '[\\@]') {
        return "$env:COMPUTERNAME\$UserName"
    }
    return $UserName
}

function Get-AccountSid([string]$Account) {
    if ($Account -match '^(\.\\|NT AUTHORITY\\)?LocalSystem$') {
        return 'S-1-5-18'   # the Service Control Manager's name for it, not an account name
    }
    try {
        $name = New-Object System.Security.Principal.NTAccount((Get-QualifiedAccount $Account))
        return $name.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        throw "there is no Windows account '$Account'"
    }
}

# The service's account: the one given; else the one the service already runs as, unless it
# is a built-in one; else asked for. Sets $ServiceAccount and $ServiceSid.
function Resolve-ServiceAccount {
    if (-not $ServiceCredential) {
        $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'" -ErrorAction SilentlyContinue
        if ($service -and $service.StartName -and ((Get-AccountSid $service.StartName) -notin $BuiltInServiceAccounts)) {
            $script:ServiceAccount = Get-QualifiedAccount $service.StartName
            $script:ServiceSid = Get-AccountSid $script:ServiceAccount
            Write-Done "the service runs as $script:ServiceAccount; kept"
            return
        }
        if ($service) {
            Write-Warning "the $ServiceName service runs as $($service.StartName), which cannot reach a trader's terminal: give the trader's account."
        }
        $script:ServiceCredential = Get-Credential -UserName ".\$env:USERNAME" -Message ('The Windows ' +
            'account the gateway service runs as: the trader''s account, which will own the terminal.')
        if (-not $script:ServiceCredential) {
            throw 'no service account given: pass -ServiceCredential (Get-Credential .\trader)'
        }
    }
    $script:ServiceAccount = Get-QualifiedAccount $ServiceCredential.UserName
    $script:ServiceSid = Get-AccountSid $script:ServiceAccount
    if ($script:ServiceSid -in $BuiltInServiceAccounts) {
        throw ("refusing to run the service as $($script:ServiceAccount): the MetaTrader5 " +
            'package reaches only a terminal of the same user in the same session, and a ' +
            'terminal started by the service would run with that account''s rights. Give the ' +
            'trader''s account: -ServiceCredential (Get-Credential .\trader)')
    }
    Write-Done "the service will run as $script:ServiceAccount"
}

# "Log on as a service" (SeServiceLogonRight). services.msc grants it when an account is set
# there; Win32_Service.Change, used here, does not. secedit edits the local security policy.
function Grant-ServiceLogonRight([string]$Sid) {
    $work = Join-Path ([System.IO.Path]::GetTempPath()) "mt5-bridge-rights-$PID"
    New-Item -ItemType Directory -Force -Path $work | Out-Null
    try {
        $policy = Join-Path $work 'rights.inf'
        Invoke-Checked 'secedit.exe' @('/export', '/cfg', $policy, '/areas', 'USER_RIGHTS', '/quiet') -Quiet
        $lines = @(Get-Content -LiteralPath $policy)
        $index = -1
        for ($i = 0; $i -lt $lines.Length; $i++) {
            if ($lines[$i] -match '^SeServiceLogonRight\s*=') {
                $index = $i
            }
        }
        if ($index -ge 0) {
            $holders = @(($lines[$index] -split '=', 2)[1] -split ',' | ForEach-Object { $_.Trim() })
            if ($holders -contains "*$Sid") {
                return $false
            }
            $lines[$index] = "$($lines[$index]),*$Sid"
        }
        else {
            $at = [array]::IndexOf($lines, '[Privilege Rights]')
            if ($at -lt 0) {
                throw "secedit's export has no [Privilege Rights] section"
            }
            $lines = @($lines[0..$at]) + @("SeServiceLogonRight = *$Sid") + @($lines | Select-Object -Skip ($at + 1))
        }
        Set-Content -LiteralPath $policy -Value $lines -Encoding Unicode
        Invoke-Checked 'secedit.exe' @('/configure', '/db', (Join-Path $work 'rights.sdb'), '/cfg', $policy, '/areas', 'USER_RIGHTS', '/quiet') -Quiet
        return $true
    }
    finally {
        Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
    }
}

# The [mt5] path an existing gateway.toml names, or $null.
function Get-ConfiguredTerminal {
    $code = 'import sys, tomllib; print(tomllib.loads(open(sys.argv[1], encoding=''utf-8-sig'').read()).get(''mt5'', {}).get(''path'', ''''))'
    return Get-PythonOutput $VenvPython $code -Arguments @($ConfigFile)
}

# The only terminal64.exe running or installed under Program Files.
function Find-Terminal {
    $running = @(Get-Process -Name 'terminal64' -ErrorAction SilentlyContinue | ForEach-Object { $_.Path })
    $installed = @(Get-ChildItem -Path (Join-Path $env:ProgramFiles '*\terminal64.exe') -ErrorAction SilentlyContinue |
            ForEach-Object { $_.FullName })
    $found = @(@($running) + @($installed) | Where-Object { $_ } | Sort-Object -Unique)
    if ($found.Length -eq 1) {
        return $found[0]
    }
    if ($found.Length -eq 0) {
        throw 'no terminal64.exe is running or under Program Files: install the terminal, or pass -TerminalPath C:\path\to\terminal64.exe'
    }
    throw "several terminals: $($found -join '; '). Pass -TerminalPath with the one the gateway should start."
}

function Get-TerminalProcess([string]$Path) {
    return @(Get-Process -Name 'terminal64' -ErrorAction SilentlyContinue | Where-Object { $_.Path -and $_.Path -ieq $Path })
}

# Two copies of a terminal cannot run from one folder. A copy in session 0 was started by the
# (now stopped) service: nobody can see it to close it, so -EndServiceCopy ends it. A copy on a
# desktop is left for its user to close.
function Wait-TerminalClosed([string]$Path, [switch]$EndServiceCopy) {
    if ($EndServiceCopy) {
        Get-TerminalProcess $Path | Where-Object { $_.SessionId -eq 0 } | ForEach-Object {
            Write-Done "ending the terminal the service left running (pid $($_.Id))"
            Stop-Process -Id $_.Id -Force
        }
    }
    $told = $false
    while (@(Get-TerminalProcess $Path | Where-Object { $_.SessionId -ne 0 }).Length -gt 0) {
        if (-not $told) {
            Write-Host "    waiting for the terminal on the desktop to be closed (File > Exit): $Path" -ForegroundColor Yellow
            $told = $true
        }
        Start-Sleep -Seconds 2
    }
}

# -- 1. Python, the package, the account ------------------------------------------------------

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
$OpenToAll = @('Any', '*', '0.0.0.0/0', '::/0', 'Internet')
foreach ($address in @($AllowFrom) + @($MetricsAllowFrom)) {
    if ($address -in $OpenToAll) {
        throw "-AllowFrom/-MetricsAllowFrom $address would admit every address; name the nodes (addresses or subnets)"
    }
}

Write-Step 'The service account'
Resolve-ServiceAccount

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

Write-Step "Data directory $DataDir (SYSTEM, Administrators and $ServiceAccount only)"
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
$newConfig = -not (Test-Path -LiteralPath $ConfigFile)
if (-not $newConfig) {
    $configured = Get-ConfiguredTerminal
    if ($TerminalPath -and $configured -and $TerminalPath -ine $configured) {
        Add-Warning "-TerminalPath $TerminalPath ignored: the existing gateway.toml names $configured ([mt5] path); edit it to change"
    }
    $TerminalPath = $configured
    if (-not $TerminalPath) {
        Add-Warning ("$ConfigFile has no [mt5] path: the service can only reach a terminal it " +
            'starts itself. Set [mt5] path (terminal64.exe) and portable = true there; see docs\OPERATIONS.md')
    }
    Write-Done 'exists; kept (edit it, then restart the service)'
}
else {
    if (-not $TerminalPath) {
        $TerminalPath = Find-Terminal
    }
    if (-not (Test-Path -LiteralPath $TerminalPath -PathType Leaf)) {
        throw "-TerminalPath $TerminalPath is not a file"
    }
    $TerminalPath = (Resolve-Path -LiteralPath $TerminalPath).Path
    $text = [System.IO.File]::ReadAllText((Resolve-Path -LiteralPath $ExampleConfig).Path)
    $text = Set-TomlValue $text 'terminal' '"mt5"'
    $text = Set-TomlValue $text 'bind' "`"$Bind`""
    $text = Set-TomlValue $text 'data_dir' (ConvertTo-TomlLiteral $StateDir)
    $text = Set-TomlValue $text 'secret_file' (ConvertTo-TomlLiteral $SecretFile)
    $text = Set-TomlValue $text 'log_file' '"gateway.log"'
    $text = Set-TomlValue $text 'curve_secret_key' (ConvertTo-TomlLiteral (Join-Path $KeysDir 'gateway.key_secret'))
    $text = Set-TomlValue $text 'curve_clients' (ConvertTo-TomlLiteral $ClientsDir)
    $text = Set-TomlValue $text 'path' (ConvertTo-TomlLiteral $TerminalPath)
    $text = Set-TomlValue $text 'portable' 'true'
    if ($MetricsPort -ne 0) {
        $text = Set-TomlValue $text 'metrics_port' "$MetricsPort"
        if (@($MetricsAllowFrom).Length -gt 0) {
            $text = Set-TomlValue $text 'metrics_host' '"0.0.0.0"'
        }
    }
    [System.IO.File]::WriteAllText($ConfigFile, $text, $Utf8NoBom)
    Write-Done "written from gateway.example.toml (terminal = `"mt5`", [mt5] path = $TerminalPath, portable = true, CURVE on)"
}

# -- 3. The terminal ------------------------------------------------------------------------

if ($TerminalPath) {
    $terminalDir = Split-Path -Parent $TerminalPath
    Write-Step "Terminal $TerminalPath (portable: its data in $terminalDir)"
    Invoke-Checked 'icacls.exe' @($terminalDir, '/grant', "*${ServiceSid}:(OI)(CI)M", '/Q') -Quiet
    Write-Done "$ServiceAccount may write there"
    if ($newConfig -and -not $SkipTerminalSetup) {
        Write-Step "First set-up of the terminal, in portable mode, as $ServiceAccount"
        Wait-TerminalClosed $TerminalPath -EndServiceCopy
        if (-not $ServiceCredential) {
            $ServiceCredential = Get-Credential -UserName $ServiceAccount -Message 'The password of the service account, to open the terminal as it'
        }
        Write-Host '    In the terminal that opens:' -ForegroundColor Yellow
        Write-Host '      1. log in to the trading account, with "Save password" ticked;'
        Write-Host '      2. turn Algo Trading on (the toolbar button is green);'
        Write-Host '      3. Tools > Options > Expert Advisors: tick "Allow algorithmic trading", untick'
        Write-Host '         "Disable algorithmic trading via external Python API";'
        Write-Host '      4. close it (File > Exit). The installer goes on then.'
        Start-Process -FilePath $TerminalPath -ArgumentList '/portable' -Credential $ServiceCredential -WorkingDirectory $terminalDir
        Start-Sleep -Seconds 5
        Wait-TerminalClosed $TerminalPath
        Write-Done 'closed; its settings are kept beside terminal64.exe'
    }
}

# -- 4. The service -------------------------------------------------------------------------

Write-Step "Registering the $ServiceName service (automatic start)"
# pywin32 installs the service, or updates it when it exists already.
Invoke-Checked $VenvPython @('-m', 'gtw_server.service', '--startup', 'auto', 'install')
if (-not (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
    throw "the $ServiceName service was not registered; see the output above"
}

Write-Step "Running the service as $ServiceAccount"
if ($ServiceCredential) {
    $service = Get-CimInstance -ClassName Win32_Service -Filter "Name='$ServiceName'"
    $result = Invoke-CimMethod -InputObject $service -MethodName Change -Arguments @{
        StartName     = $ServiceAccount
        StartPassword = $ServiceCredential.GetNetworkCredential().Password
    }
    if ($result.ReturnValue -ne 0) {
        throw "setting the service account failed (Win32_Service.Change returned $($result.ReturnValue))"
    }
}
if (Grant-ServiceLogonRight $ServiceSid) {
    Write-Done 'granted "Log on as a service"'
}
else {
    Write-Done 'it has "Log on as a service" already'
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

# -- 5. Firewall ------------------------------------------------------------------------------

$port = Get-BindPort $Bind
if (@($AllowFrom).Length -gt 0) {
    # The order port and the event port (bind's + 1, the gateway's default for [gateway] events).
    Write-Step "Firewall: TCP $port and $($port + 1) from $($AllowFrom -join ', ') only"
    Get-NetFirewallRule -Name $FirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -Name $FirewallRule -DisplayName 'MT5 bridge gateway (ZeroMQ)' `
        -Direction Inbound -Action Allow -Protocol TCP -LocalPort $port, ($port + 1) `
        -RemoteAddress $AllowFrom -Profile Any | Out-Null
    Write-Done "rule $FirewallRule"
}
elseif ($rule = Get-NetFirewallRule -Name $FirewallRule -ErrorAction SilentlyContinue) {
    $kept = ($rule | Get-NetFirewallAddressFilter).RemoteAddress -join ', '
    Write-Step "Firewall: rule $FirewallRule kept (TCP $port from $kept)"
}
elseif (-not (Test-LoopbackEndpoint $Bind)) {
    Add-Warning ("No firewall rule for the gateway's port TCP ${port}: no -AllowFrom was given. " +
        'Windows Firewall blocks it by default, so no strategy node can connect; if the firewall ' +
        'is off or another rule admits the port, every address can reach it. Run the installer ' +
        'again with -AllowFrom <node addresses or subnets>.')
}
if ($MetricsPort -ne 0 -and @($MetricsAllowFrom).Length -gt 0) {
    Write-Step "Firewall: metrics TCP $MetricsPort from $($MetricsAllowFrom -join ', ') only"
    Get-NetFirewallRule -Name $MetricsFirewallRule -ErrorAction SilentlyContinue | Remove-NetFirewallRule
    New-NetFirewallRule -Name $MetricsFirewallRule -DisplayName 'MT5 bridge gateway (metrics)' `
        -Direction Inbound -Action Allow -Protocol TCP -LocalPort $MetricsPort `
        -RemoteAddress $MetricsAllowFrom -Profile Any | Out-Null
    Write-Done "rule $MetricsFirewallRule"
}

# -- 6. Start -------------------------------------------------------------------------------

$started = $false
$log = $null
if (-not $NoStart) {
    if ($TerminalPath) {
        Wait-TerminalClosed $TerminalPath   # the service's own copy may stay: it attaches to it
    }
    Write-Step "Starting $ServiceName"
    $startedAt = Get-Date
    $verdict = $null
    try {
        Start-Service -Name $ServiceName
    }
    catch {
        Add-Warning "the service did not start: $($_.Exception.Message) (a wrong password for ${ServiceAccount}? Run again with -ServiceCredential)"
    }
    $deadline = (Get-Date).AddSeconds(90)
    while ((Get-Date) -lt $deadline -and -not $verdict) {
        Start-Sleep -Seconds 2
        # This run's log file: each run of the service starts a new one.
        $log = Get-ChildItem -LiteralPath $StateDir -Filter $LogPattern -ErrorAction SilentlyContinue |
            Where-Object { $_.LastWriteTime -ge $startedAt } | Sort-Object LastWriteTime | Select-Object -Last 1
        if ($log) {
            $verdict = Get-Content -LiteralPath $log.FullName | Where-Object { $_ -match 'gateway ready|cannot start|service failed' } |
                Select-Object -First 1
        }
        if ((Get-Service -Name $ServiceName).Status -eq 'Stopped') {
            break
        }
    }
    if ($verdict -and $verdict -match 'gateway ready') {
        $started = $true
        Write-Done ($verdict -replace '^.*\| gateway \| ', '')
        if ($verdict -match 'not connected') {
            Add-Warning ('the gateway runs, but the terminal is not connected: see "The gateway will not ' +
                'start" and the prerequisites in docs\OPERATIONS.md (terminal logged in with "Save ' +
                'password" in its portable set-up, Algo Trading on)')
        }
    }
    else {
        Add-Warning 'the gateway did not report ready; its log and the Event Log say why (below)'
        if ($log) {
            Write-Host "    Last lines of $($log.FullName):"
            Get-Content -LiteralPath $log.FullName -Tail 20 | ForEach-Object { Write-Host "    $_" }
        }
        Write-Host "    Event Log: Get-WinEvent -FilterHashtable @{LogName='Application'; ProviderName='$ServiceName'} -MaxEvents 10"
    }
}

# -- 7. What to do next ---------------------------------------------------------------------

$gatewayPublic = Join-Path $KeysDir 'gateway.key'
$hostName = [System.Net.Dns]::GetHostName()
Write-Host ''
Write-Host 'Installed.' -ForegroundColor Green
Write-Host "  service      $ServiceName ($(if ($started) { 'running' } else { 'not started' }); Get-Service $ServiceName), as $ServiceAccount"
Write-Host "  config       $ConfigFile"
Write-Host "  terminal     $(if ($TerminalPath) { "$TerminalPath (portable)" } else { 'not set' })"
Write-Host "  logs         $StateDir\gateway.<start time>.log, audit trail audit.<start time>.jsonl"
Write-Host "               follow the newest: Get-ChildItem $StateDir\$LogPattern | Sort-Object LastWriteTime | Select-Object -Last 1 | Get-Content -Tail 50 -Wait"
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
if ($Warnings.Count -gt 0) {
    Write-Host ''
    Write-Host "Warnings ($($Warnings.Count)):" -ForegroundColor Yellow
    $Warnings | ForEach-Object { Write-Host "  ! $_" -ForegroundColor Yellow }
}
