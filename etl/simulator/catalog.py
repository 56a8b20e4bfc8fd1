"""What the simulated organization is made of: projects, definitions, jobs, tasks, people, agents,
and the catalog of failure messages (each with its ground-truth category) and planted secrets.

Pure data and small pure functions of a `random.Random`; nothing here knows about HTTP or time.
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid
from dataclasses import dataclass, field


def guid(*parts: object) -> str:
    """A GUID string derived from `parts`: stable across runs and independent of generation order."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def hexdigest(*parts: object, length: int = 40) -> str:
    """A lowercase hex string (commit shas, content hashes) derived from `parts`."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:length]


# --- organization layout ----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskTemplate:
    """One step of a job: display name, kind (drives durations and failures), ADO task reference."""

    kind: str
    name: str
    task: tuple[str, str, str] | None = None  # (id, name, version)
    always: bool = False  # runs even after a failure (post-job steps, publishing test results)


@dataclass(frozen=True)
class JobTemplate:
    """A job of a stage, on one platform."""

    stage: str
    name: str
    kind: str  # build | test | publish
    platform: str  # linux | windows | macos


@dataclass(frozen=True)
class Definition:
    """A pipeline definition and what its builds look like."""

    id: int
    folder: str
    name: str
    repository: str
    language: str  # dotnet | node | python | cpp
    platforms: tuple[str, ...]  # build jobs, and the platforms metrics documents come from
    test_platforms: tuple[str, ...]
    publish: bool
    checkpoint: bool = False
    weight: float = 1.0
    summary: bool = False  # also uploads build-summary.json
    package: str = ""

    @property
    def full_name(self) -> str:
        """`path\\name` as analysts see it (the Definition column)."""
        return f"{self.folder}\\{self.name}"

    @property
    def stages(self) -> tuple[str, ...]:
        return ("Build", "Test", "Publish") if self.publish else ("Build", "Test")

    def jobs(self) -> list[JobTemplate]:
        """Jobs of every stage, in stage order."""
        jobs = [JobTemplate("Build", f"Build {PLATFORM_ARCH[p]}", "build", p) for p in self.platforms]
        jobs += [JobTemplate("Test", f"Test {PLATFORM_ARCH[p]}", "test", p) for p in self.test_platforms]
        if self.publish:
            jobs.append(JobTemplate("Publish", "Publish packages", "publish", "windows"))
        return jobs


PLATFORM_ARCH = {"linux": "linux_x64", "windows": "windows_x64", "macos": "osx_arm64"}

PROJECTS: dict[str, tuple[Definition, ...]] = {
    "Engineering": (
        Definition(11, "\\ci", "runtime", "runtime", "dotnet", ("linux", "windows", "macos"), ("linux", "windows"),
                   publish=True, weight=1.4, package="Contoso.Runtime"),
        Definition(12, "\\ci", "sdk", "sdk", "dotnet", ("linux", "windows"), ("linux", "windows"),
                   publish=False, weight=1.0, package="Contoso.Sdk"),
        Definition(13, "\\pr", "web", "web", "node", ("linux",), ("linux", "windows"),
                   publish=False, weight=0.8, package="@contoso/web"),
    ),
    "Platform": (
        Definition(21, "\\ci", "agent", "agent", "cpp", ("linux", "windows", "macos"), ("linux", "windows"),
                   publish=False, weight=1.2, summary=True, package="contoso-agent"),
        Definition(22, "\\ci", "infra", "infra", "python", ("linux",), ("linux", "windows"),
                   publish=True, weight=0.8, package="contoso-infra"),
        Definition(23, "\\official", "packaging", "packaging", "dotnet", ("windows", "linux"), ("windows", "linux"),
                   publish=True, checkpoint=True, weight=0.8, summary=True, package="Contoso.Packaging"),
    ),
}

_TASK_IDS = {
    "UseDotNet": ("b0ce7256-7898-45d3-9cb5-176b752bfea6", "2.246.1"),
    "NodeTool": ("31c75bbb-bcdf-4706-8d7c-4da6a1959bc2", "0.244.0"),
    "UsePythonVersion": ("33c63b11-352b-45a2-ba1b-54cb568a29ca", "0.245.1"),
    "DotNetCoreCLI": ("5541a522-603c-47ad-91fc-a4b1d163081b", "2.247.1"),
    "Npm": ("fe47e961-9fa8-4106-8639-368c022d43ad", "1.244.1"),
    "Bash": ("6c731c3c-3c68-459a-a5c9-bde6e6595b5b", "3.246.1"),
    "CMake": ("7d831c3c-3c68-459a-a5c9-bde6e659596c", "1.245.0"),
    "CmdLine": ("d9bafed4-0b18-4f58-968d-86655b4d2ce9", "2.246.1"),
    "PublishTestResults": ("0b0f01ed-7dde-43ff-9cbb-e48954daf9b1", "2.246.0"),
    "PublishPipelineArtifact": ("ecdc45f6-832d-4ad9-b52b-ee49e94659be", "1.242.0"),
    "DownloadPipelineArtifact": ("61f2a582-95ae-4948-b34d-a1b3c4f6a737", "2.245.0"),
    "EsrpCodeSigning": ("7e6b2b5a-1f2b-4a5e-9d6c-5a1c2d3b4e5f", "5.1.0"),
    "NuGetCommand": ("333b11bd-d341-40d9-afcf-b32d5ce6f23b", "2.246.0"),
    "PowerShell": ("e213ff0f-5d5c-4791-802d-52ea3e7be1f1", "2.245.1"),
    # A pipeline still on a major its publisher deprecated (CmdLine@2 is current), so the usage report has one.
    "CmdLine@1": ("d9bafed4-0b18-4f58-968d-86655b4d2ce9", "1.1.3"),
}


def _task(key: str) -> tuple[str, str, str]:
    """(id, name, version) of a task; `Name@major` picks an older major than the current one."""
    task_id, version = _TASK_IDS[key]
    return (task_id, key.split("@")[0], version)


_SETUP = {"dotnet": ("Install .NET SDK", "UseDotNet"), "node": ("Use Node.js 20.x", "NodeTool"),
          "python": ("Use Python 3.12", "UsePythonVersion"), "cpp": ("Configure CMake", "CMake")}
_RESTORE = {"dotnet": ("Restore", "DotNetCoreCLI"), "node": ("npm ci", "Npm"),
            "python": ("pip install -r requirements.txt", "Bash"), "cpp": ("Restore vcpkg packages", "CmdLine@1")}
_BUILD = {"dotnet": ("Build", "DotNetCoreCLI"), "node": ("npm run build", "Npm"),
          "python": ("Build wheel", "Bash"), "cpp": ("Build", "CMake")}
_TEST = {"dotnet": ("Test", "DotNetCoreCLI"), "node": ("npm test", "Npm"),
         "python": ("pytest", "Bash"), "cpp": ("ctest", "Bash")}


def job_tasks(definition: Definition, kind: str, filler: int = 0) -> list[TaskTemplate]:
    """The steps of a job of this kind; `filler` extra script steps make big timelines for benchmarks."""
    lang = definition.language
    head = [TaskTemplate("init", "Initialize job")]
    if kind != "publish":
        head.append(TaskTemplate("checkout", f"Checkout {definition.repository}@main to s"))
        head.append(TaskTemplate("setup", _SETUP[lang][0], _task(_SETUP[lang][1])))
        head.append(TaskTemplate("restore", _RESTORE[lang][0], _task(_RESTORE[lang][1])))
    if kind == "build":
        body = [
            TaskTemplate("build", _BUILD[lang][0], _task(_BUILD[lang][1])),
            TaskTemplate("artifact", "Publish build artifacts", _task("PublishPipelineArtifact")),
            TaskTemplate("telemetry", "Publish telemetry", _task("PublishPipelineArtifact"), always=True),
        ]
    elif kind == "test":
        body = [
            TaskTemplate("test", _TEST[lang][0], _task(_TEST[lang][1])),
            TaskTemplate("testresults", "Publish test results", _task("PublishTestResults"), always=True),
        ]
    else:
        body = [
            TaskTemplate("download", "Download build artifacts", _task("DownloadPipelineArtifact")),
            TaskTemplate("sign", "Sign packages", _task("EsrpCodeSigning")),
            TaskTemplate("pack", "Pack", _task("DotNetCoreCLI") if lang == "dotnet" else _task("Bash")),
            TaskTemplate("push", "Push packages to feed", _task("NuGetCommand")),
        ]
    fill = [TaskTemplate("script", f"Run step {i + 1:04d}", _task("CmdLine")) for i in range(filler)]
    tail = [TaskTemplate("finalize", "Finalize Job", always=True)]
    if kind != "publish":
        tail.insert(0, TaskTemplate("postcheckout", f"Post-job: Checkout {definition.repository}@main to s", always=True))
    return head + body + fill + tail


TASK_SECONDS = {
    "init": (2, 8), "checkout": (10, 90), "setup": (5, 40), "restore": (30, 240), "build": (240, 1500),
    "artifact": (10, 90), "telemetry": (2, 10), "test": (180, 1200), "testresults": (3, 20),
    "download": (10, 120), "sign": (60, 400), "pack": (20, 120), "push": (10, 90), "script": (1, 20),
    "postcheckout": (1, 5), "finalize": (1, 4),
}

# --- people and agents -----------------------------------------------------------------------

PEOPLE = (
    ("Jane Doe", "jane.doe@contoso.com"),
    ("Arjun Mehta", "arjun.mehta@contoso.com"),
    ("Li Wei", "li.wei@contoso.com"),
    ("Maria Garcia", "maria.garcia@contoso.com"),
    ("Tomasz Nowak", "tnowak@fabrikam.io"),
    ("Aisha Bello", "aisha.bello@contoso.com"),
    ("Sam Okafor", "sam.okafor@contoso.com"),
    ("Emma Larsen", "emma.larsen@fabrikam.io"),
)
SERVICE_IDENTITY = ("Microsoft.VisualStudio.Services.TFS", "00000002-0000-8888-8000-000000000000@2c895908-04e0-4952-89fd-54b0046d6288")
USERS = ("jdoe", "amehta", "mgarcia", "lwei")

POOLS = {
    "linux": ("NetCore1ESPool-Internal", "NetCore1ESPool-Ubuntu2204-{n}"),
    "windows": ("NetCore1ESPool-Internal", "NetCore1ESPool-Internal-{n}"),
    "macos": ("Azure Pipelines", "Azure Pipelines {n}"),
}

OS_INFO = {
    "linux": ("Linux-6.5.0-1025-azure-x86_64-with-glibc2.35", "eth0", 8, 32768),
    "windows": ("Windows-2022Server-10.0.20348-SP0", "Ethernet", 8, 32768),
    "macos": ("macOS-14.5-arm64-arm-64bit", "en0", 4, 16384),
}

SOURCE_ROOT = {"linux": "/home/vsts/work/1/s", "windows": "D:\\a\\1\\s", "macos": "/Users/runner/work/1/s"}


def source_path(platform: str, *parts: str) -> str:
    """A path under the agent's sources directory in the platform's separator style."""
    sep = "\\" if platform == "windows" else "/"
    return sep.join((SOURCE_ROOT[platform], *parts))


# --- planted secrets -------------------------------------------------------------------------

_B32 = string.ascii_lowercase + "234567"


@dataclass
class Secrets:
    """Collects every sensitive string planted in a served body (ground truth `planted_secrets`)."""

    values: set[str] = field(default_factory=set)

    def add(self, value: str) -> str:
        self.values.add(value)
        return value


def pat(rng: random.Random) -> str:
    """An Azure DevOps personal access token: 52 lowercase base32 characters."""
    return "".join(rng.choice(_B32) for _ in range(52))


def jwt(rng: random.Random) -> str:
    """A JWT-shaped bearer token."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = b64(b'{"typ":"JWT","alg":"RS256","x5t":"simulated"}')
    payload = b64(f'{{"aud":"499b84ac-1321-427f-aa17-267ca6975798","oid":"{rng.getrandbits(64):x}"}}'.encode())
    signature = b64(rng.randbytes(48))
    return f"{header}.{payload}.{signature}"


def sas_sig(rng: random.Random) -> str:
    """A URL-encoded SAS signature value."""
    raw = base64.b64encode(rng.randbytes(32)).decode()
    return raw.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def account_key(rng: random.Random) -> str:
    """A storage account key (88 base64 characters ending in ==)."""
    return base64.b64encode(rng.randbytes(64)).decode()


def aws_key(rng: random.Random) -> str:
    """An AWS-style access key id."""
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def ipv4(rng: random.Random) -> str:
    """A private IPv4 address."""
    return f"10.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(2, 254)}"


SECRET_KINDS = ("email", "home", "users", "pat", "bearer", "sas", "connstr", "aws", "ip")


def secret_fits(kind: str, platform: str | None) -> bool:
    """Whether a secret kind is plausible in a log of `platform` (no /home paths on Windows agents)."""
    if kind == "home":
        return platform != "windows"
    if kind == "users":
        return platform in (None, "windows")
    return True


def secret_fragment(kind: str, rng: random.Random, secrets: Secrets) -> str:
    """A realistic log fragment carrying one planted secret of `kind` (recorded in `secrets`)."""
    if kind == "email":
        email = secrets.add(rng.choice(PEOPLE)[1])
        return f" (last change by {email})"
    if kind == "home":
        user = rng.choice(USERS)
        secrets.add(f"/home/{user}")
        return f" while reading /home/{user}/.nuget/NuGet/NuGet.Config"
    if kind == "users":
        user = rng.choice(USERS)
        secrets.add(f"C:\\Users\\{user}")
        return f" (cache C:\\Users\\{user}\\AppData\\Local\\Temp\\build-{rng.getrandbits(24):06x}.tmp)"
    if kind == "pat":
        token = secrets.add(pat(rng))
        return f" [git -c http.extraheader=\"AUTHORIZATION: basic {token}\" fetch --depth=1]"
    if kind == "bearer":
        token = secrets.add(jwt(rng))
        return f" request headers: Authorization: Bearer {token}"
    if kind == "sas":
        sig = secrets.add(sas_sig(rng))
        return (f" downloading https://contosodrops.blob.core.windows.net/drops/{rng.getrandbits(32):08x}.zip"
                f"?sv=2022-11-02&se=2026-12-31T00%3A00%3A00Z&sr=b&sp=r&sig={sig}")
    if kind == "connstr":
        key = secrets.add(account_key(rng))
        return (" using DefaultEndpointsProtocol=https;AccountName=contosodiag;"
                f"AccountKey={key};EndpointSuffix=core.windows.net")
    if kind == "aws":
        key = secrets.add(aws_key(rng))
        return f" with AWS_ACCESS_KEY_ID={key}"
    if kind == "ip":
        ip = secrets.add(ipv4(rng))
        return f" (remote endpoint {ip}:443)"
    raise ValueError(f"unknown secret kind {kind!r}")


# --- failure messages ------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureSpot:
    """Where a failure of a category happens: job kind, and the task kind or the job itself."""

    job_kind: str
    task_kind: str | None  # None: an issue on the job record (agent lost, timeout, no parallelism)


SPOTS: dict[str, tuple[FailureSpot, ...]] = {
    "network": (FailureSpot("build", "restore"), FailureSpot("test", "restore"), FailureSpot("build", "checkout")),
    "dependency": (FailureSpot("build", "restore"), FailureSpot("test", "restore")),
    "compilation": (FailureSpot("build", "build"),),
    "timeout": (FailureSpot("test", None), FailureSpot("build", None)),
    "infrastructure": (FailureSpot("build", None), FailureSpot("test", None)),
    "resource": (FailureSpot("build", "build"), FailureSpot("test", "test")),
    "permission": (FailureSpot("publish", "push"), FailureSpot("build", "checkout")),
    "security": (FailureSpot("publish", "sign"), FailureSpot("build", "build")),
    "packaging": (FailureSpot("publish", "pack"), FailureSpot("publish", "push"), FailureSpot("build", "build")),
    "configuration": (FailureSpot("build", "build"), FailureSpot("test", "test")),
    "unknown": (FailureSpot("build", "build"), FailureSpot("test", "test")),
    "architecture": (FailureSpot("build", "build"), FailureSpot("test", "test")),
}


@dataclass(frozen=True)
class IssueSpec:
    """One planted issue; `category` is the ground truth (None for warnings)."""

    type: str  # error | warning
    message: str
    data: dict[str, str]
    category: str | None
    issue_category: str = "General"


def log_line(rng: random.Random) -> str:
    """A log line number (issue `data` values are strings in Azure DevOps)."""
    return str(rng.randint(12, 4800))


def _feed(rng: random.Random) -> str:
    return f"https://pkgs.dev.azure.com/contoso/public/_packaging/contoso-{rng.choice(['eng', 'tools', 'deps'])}/nuget/v3/index.json"


_NAMESPACES = ("Contoso.Runtime.Interop", "Contoso.Build.Tasks", "Contoso.Net.Http", "Contoso.Collections.Generic")
_TYPES = ("SpanHelpers", "HttpClientFactory", "ArrayPoolBucket", "JsonTypeInfoResolver", "ManifestReader")
_PACKAGES = ("Microsoft.DotNet.Arcade.Sdk", "Contoso.Build.Tasks", "System.Text.Json", "Newtonsoft.Json")
_NPM = ("@contoso/ui-kit", "left-pad-ng", "@contoso/eslint-config", "webpack-contoso-plugin")
_PIP = ("contoso-telemetry", "azure-mgmt-contoso", "numpy-contoso", "pyyaml-contoso")


def _src_file(platform: str, lang: str, rng: random.Random) -> str:
    if lang == "dotnet":
        return source_path(platform, "src", "libraries", rng.choice(_NAMESPACES), "src", f"{rng.choice(_TYPES)}.cs")
    if lang == "cpp":
        return source_path(platform, "src", "agent", rng.choice(("net", "io", "core")), f"{rng.choice(('socket', 'buffer', 'worker'))}.cpp")
    if lang == "node":
        return source_path(platform, "packages", "web", "src", f"{rng.choice(('App', 'Router', 'Store'))}.tsx")
    return source_path(platform, "contoso_infra", f"{rng.choice(('deploy', 'inventory', 'state'))}.py")


def failure_issues(category: str, rng: random.Random, *, platform: str, lang: str, agent: str,
                   job_name: str, task_name: str) -> list[IssueSpec]:
    """Realistic error issues for a failure of `category` (one, or a few for compiler errors)."""
    line = log_line(rng)
    if category == "network":
        # npm's own errors only where npm runs; feeds and git everywhere.
        choice = rng.choice((0, 1, 2, 3) if lang == "node" else (0, 1, 3))
        if choice == 0:
            msg = (f"error : Unable to load the service index for source {_feed(rng)}. "
                   "The SSL connection could not be established, see inner exception. Connection reset by peer")
            return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "network")]
        if choice == 1:
            msg = (f"fatal: unable to access 'https://dev.azure.com/contoso/Engineering/_git/{lang}-repo/': "
                   f"Failed to connect to dev.azure.com port 443 after {rng.randint(20000, 130000)} ms: Connection timed out")
            return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "network")]
        if choice == 2:
            msg = (f"npm ERR! code ECONNRESET\nnpm ERR! network request to https://registry.npmjs.org/{rng.choice(_NPM)} "
                   "failed, reason: socket hang up (NETCORE_ENGINEERING_TELEMETRY=Restore)")
            return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "network")]
        msg = (f"error : Response status code does not indicate success: 503 (Service Unavailable) retrieving "
               f"{_feed(rng)} (NETCORE_ENGINEERING_TELEMETRY=Restore)")
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line, "code": "NU1301"}, "network")]
    if category == "dependency":
        choice = {"dotnet": 0, "node": 1, "python": 2}.get(lang, 3)
        if choice == 3:
            port = rng.choice(("zlib", "openssl", "curl", "fmt"))
            msg = (f"error: no version database entry for {port} at {rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
                   f"\n  while loading {source_path(platform, 'vcpkg.json')}")
            return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "dependency")]
        if choice == 0:
            pkg = rng.choice(_PACKAGES)
            proj = _src_file(platform, "dotnet", rng).rsplit(".", 1)[0] + ".csproj"
            msg = (f"{proj} : error NU1101: Unable to find package {pkg}.{rng.randint(1, 9)}. No packages exist with "
                   f"this id in source(s): contoso-eng, dotnet-public (NETCORE_ENGINEERING_TELEMETRY=Restore)")
            return [IssueSpec("error", msg, {"type": "error", "sourcepath": proj, "code": "NU1101",
                                             "logFileLineNumber": line}, "dependency", "Code")]
        if choice == 1:
            pkg = rng.choice(_NPM)
            msg = (f"npm ERR! code E404\nnpm ERR! 404 Not Found - GET https://registry.npmjs.org/{pkg}/-/"
                   f"{pkg.split('/')[-1]}-{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}.tgz - Not found")
            return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "dependency")]
        pkg = rng.choice(_PIP)
        msg = (f"ERROR: Could not find a version that satisfies the requirement {pkg}=={rng.randint(1, 5)}.{rng.randint(0, 20)}.{rng.randint(0, 9)} "
               f"(from versions: none)\nERROR: No matching distribution found for {pkg}")
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "dependency")]
    if category == "compilation":
        issues = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            path = _src_file(platform, "cpp" if lang == "cpp" else "dotnet", rng)
            line = log_line(rng)
            col = str(rng.randint(1, 80))
            if lang == "cpp":
                msg = f"{path}:{line}:{col}: error: '{rng.choice(_TYPES)}' was not declared in this scope"
                data = {"type": "error", "sourcepath": path, "linenumber": line, "columnnumber": col,
                        "logFileLineNumber": log_line(rng)}
            else:
                type_name = rng.choice(_TYPES)
                proj = path.rsplit(("\\" if platform == "windows" else "/"), 2)[0] + ".csproj"
                msg = (f"{path}({line},{col}): error CS0246: The type or namespace name '{type_name}' could not be "
                       f"found (are you missing a using directive or an assembly reference?) [{proj}] "
                       "(NETCORE_ENGINEERING_TELEMETRY=Build)")
                data = {"type": "error", "sourcepath": path, "linenumber": line, "columnnumber": col,
                        "code": "CS0246", "logFileLineNumber": log_line(rng)}
            issues.append(IssueSpec("error", msg, data, "compilation", "Code"))
        return issues
    if category == "timeout":
        minutes = rng.choice((60, 90, 120))
        msg = (f"The job running on agent {agent} ran longer than the maximum time of {minutes} minutes. "
               "For more information, see https://go.microsoft.com/fwlink/?linkid=2077134")
        return [IssueSpec("error", msg, {"type": "error"}, "timeout")]
    if category == "infrastructure":
        choice = rng.randrange(3)
        if choice == 0:
            msg = (f"We stopped hearing from agent {agent}. Verify the agent machine is running and has a healthy "
                   "network connection. Anything that terminates an agent process, starves it for CPU, or blocks its "
                   "network access can cause this error. For more information, see: https://go.microsoft.com/fwlink/?linkid=846610")
        elif choice == 1:
            msg = ("No hosted parallelism has been purchased or granted. To request a free parallelism grant, "
                   "please fill out the following form https://aka.ms/azpipelines-parallelism-request")
        else:
            image = {"linux": "ubuntu-18.04", "windows": "windows-2019", "macos": "macos-11"}[platform]
            msg = (f"##[error]The image '{image}' for job '{job_name}' is no longer available: "
                   f"no agent in pool Azure Pipelines could satisfy the demand ImageOverride -equals {image}")
        return [IssueSpec("error", msg, {"type": "error"}, "infrastructure")]
    if category == "resource":
        choice = rng.randrange(3)
        if choice == 0:
            msg = (f"/usr/bin/ld: final link failed: No space left on device\n"
                   f"collect2: error: ld returned 1 exit status (disk {rng.randint(0, 200)} MB free)")
        elif choice == 1:
            msg = ("error MSB4166: Child node \"3\" exited prematurely. Shutting down. Diagnostic information may be "
                   f"found in files in \"{source_path(platform, 'artifacts', 'log')}\". System.OutOfMemoryException: "
                   "Insufficient memory to continue the execution of the program.")
        else:
            msg = (f"{_src_file(platform, 'cpp', rng)}({line}): fatal error C1060: compiler is out of heap space "
                   "(NETCORE_ENGINEERING_TELEMETRY=Build)")
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "resource")]
    if category == "permission":
        choice = rng.randrange(3)
        if choice == 0:
            msg = ("Response status code does not indicate success: 403 (Forbidden - User "
                   f"'{guid('identity', rng.random())}' lacks permission to complete this action. You need to have 'AddPackage'.)")
        elif choice == 1:
            msg = ("remote: TF401019: The Git repository with name or identifier tools-internal does not exist or you "
                   "do not have permissions for the operation you are attempting.")
        else:
            msg = (f"Access denied: Access to the path '{source_path(platform, 'artifacts', 'packages', 'Release')}' is denied. "
                   "(NETCORE_ENGINEERING_TELEMETRY=Publish)")
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "permission")]
    if category == "security":
        choice = rng.randrange(3)
        if choice == 0:
            msg = (f"SignTool Error: WinVerifyTrust returned error: 0x800B0100\n\tNo signature was present in the subject. "
                   f"File: {source_path('windows', 'artifacts', 'bin', 'Contoso.Runtime.dll')}")
        elif choice == 1:
            msg = (f"Checksum mismatch for downloaded file dotnet-sdk-linux-x64.tar.gz: expected sha512 {hexdigest('a', rng.random(), length=64)} "
                   f"but got {hexdigest('b', rng.random(), length=64)}")
        else:
            msg = f"error NU3004: The package is not signed. Package 'Contoso.Runtime.{rng.randint(1, 9)}.0.{rng.randint(0, 99)}.nupkg'"
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "security")]
    if category == "packaging":
        choice = rng.randrange(3)
        if choice == 0:
            msg = "error NU5017: Cannot create a package that has no dependencies nor content. (NETCORE_ENGINEERING_TELEMETRY=Pack)"
        elif choice == 1:
            msg = ("error NETSDK1152: Found multiple publish output files with the same relative path: "
                   f"{source_path(platform, 'src', 'appsettings.json')}")
        else:
            msg = (f"Response status code does not indicate success: 409 (Conflict - The feed already contains "
                   f"'Contoso.Runtime {rng.randint(1, 9)}.0.{rng.randint(0, 99)}'.)")
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "packaging")]
    if category == "configuration":
        choice = rng.randrange(3)
        if choice == 0:
            msg = (f"/eng/pipelines/templates/{rng.choice(('build', 'test'))}-job.yml (Line: {rng.randint(5, 200)}, Col: "
                   f"{rng.randint(3, 40)}): A template expression is not permitted in this context")
        elif choice == 1:
            msg = f"Job {job_name}: Step input 'configuration' references missing parameter 'buildConfiguration'."
        else:
            msg = f"Input required: {rng.choice(('command', 'projects', 'feedsToUse'))} (task '{task_name}')"
        return [IssueSpec("error", msg, {"type": "error"}, "configuration")]
    if category == "cancelled":
        return [IssueSpec("error", "The operation was canceled.", {"type": "error"}, "cancelled")]
    if category == "architecture":
        # Cross builds for arm64 (the build-telemetry format's category): emulator, wrong binary, missing toolchain.
        choice = rng.randrange(3)
        if choice == 0:
            msg = ("qemu-aarch64-static: Could not open '/lib/ld-linux-aarch64.so.1': No such file or directory "
                   f"(running {source_path(platform, 'out', 'arm64', 'bin', 'contoso-gen')})")
        elif choice == 1:
            msg = f"/bin/sh: 1: {source_path(platform, 'out', 'arm64', 'bin', 'contoso-gen')}: Exec format error"
        else:
            msg = f"make[{rng.randint(1, 4)}]: aarch64-linux-gnu-gcc: No such file or directory"
        return [IssueSpec("error", msg, {"type": "error", "logFileLineNumber": line}, "architecture")]
    # unknown: a bare exit code says nothing about the cause
    shell = "PowerShell" if platform == "windows" else "Bash"
    code = rng.choice(("1", "2", "134", "-1073741819"))
    return [IssueSpec("error", f"{shell} exited with code '{code}'.", {"type": "error"}, "unknown")]


def validation_error(rng: random.Random) -> str:
    """A YAML validation failure (the build never started)."""
    return rng.choice((
        f"/eng/pipelines/ci.yml (Line: {rng.randint(5, 300)}, Col: {rng.randint(3, 30)}): Unexpected value 'strategy'",
        f"/eng/pipelines/ci.yml: Could not find /eng/pipelines/templates/steps-{rng.randint(1, 9)}.yml in repository self",
        "The pipeline is not valid. Job Build: Step DotNetCoreCLI input arguments references missing parameter 'configuration'.",
        f"/eng/pipelines/ci.yml (Line: {rng.randint(5, 300)}, Col: 1): A template expression is not permitted in this context",
    ))


VALIDATION_WARNINGS = (
    "The 'ubuntu-20.04' image is deprecated and will be removed on 2025-04-01; update the pipeline's vmImage.",
    "Agent pool 'Hosted VS2017' is deprecated; jobs are redirected to 'windows-2022'.",
)


def warning_issue(rng: random.Random, *, platform: str, lang: str) -> IssueSpec:
    """A compiler or task warning (not a failure)."""
    line = log_line(rng)
    if lang in ("dotnet", "cpp") and rng.random() < 0.7:
        path = _src_file(platform, lang, rng)
        msg = (f"{path}({line},{rng.randint(1, 80)}): warning CS0618: 'WebClient.WebClient()' is obsolete: "
               "'WebRequest, HttpWebRequest, ServicePoint, and WebClient are obsolete. Use HttpClient instead.'")
        return IssueSpec("warning", msg, {"type": "warning", "sourcepath": path, "linenumber": line, "code": "CS0618"},
                         None, "Code")
    return IssueSpec("warning", rng.choice((
        "Task 'NuGetCommand' version 2 is deprecated. Use NuGetAuthenticate and dotnet nuget push instead.",
        f"Retrying request to https://api.nuget.org/v3/index.json in {rng.randint(1, 30)} seconds (attempt 2 of 5)",
        "Node.js 16 is end-of-life; the task will run on Node.js 20.",
    )), {"type": "warning"}, None)


TEST_CLASSES = {
    "dotnet": ("Contoso.{area}.Tests.{cls}", "Contoso.{area}.Tests.dll"),
    "node": ("{area} {cls}", "packages/web/test/{area}.test.ts"),
    "python": ("tests.test_{area}.Test{cls}", "tests/test_{area}.py"),
    "cpp": ("{area}_tests.{cls}", "agent_tests"),
}
TEST_AREAS = ("Http", "Json", "Collections", "Threading", "IO", "Crypto", "Config", "Scheduler")
TEST_VERBS = ("Handles", "Parses", "Rejects", "Retries", "Caches", "Serializes", "Resolves", "Streams")
TEST_OBJECTS = ("EmptyInput", "LargePayload", "ConcurrentWriters", "UnicodeKeys", "ExpiredToken", "NestedArrays",
                "ChunkedResponse", "MissingFile", "CancelledRequest", "SlowConsumer")


def flaky_error(rng: random.Random, secrets: Secrets, plant: bool) -> str:
    """An error message of a flaky test failure (timing, ports, ordering)."""
    msg = rng.choice((
        f"System.TimeoutException: The operation has timed out after 00:00:{rng.randint(10, 59)}.{rng.randint(100, 999)}",
        f"Assert.Equal() Failure\nExpected: {rng.randint(2, 9)}\nActual:   {rng.randint(10, 20)}",
        f"System.Net.Sockets.SocketException (98): Address already in use [::]:{rng.randint(20000, 60000)}",
        f"Expected task {guid('task', rng.random())} to complete within 5000 ms but it was still running",
    ))
    if plant:
        msg += secret_fragment(rng.choice(("ip", "email", "home")), rng, secrets)
    return msg


def broken_error(rng: random.Random, platform: str) -> str:
    """An error message of a deterministically broken test."""
    return (f"Assert.True() Failure\nExpected: True\nActual:   False\n   at line {rng.randint(20, 400)} in "
            f"{source_path(platform, 'src', 'tests', 'RegressionTests.cs')}")
