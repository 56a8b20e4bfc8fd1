"""Jenkins step display names (what `wfapi/describe` reports) → step function names (what a Jenkinsfile calls).

The pipeline-usage view counts steps by the name a Jenkinsfile author writes (`sh`, `bat`, `script`),
but `wfapi` reports each step descriptor's display name ("Shell Script"). The table holds the display
names of the Pipeline steps shipped by Jenkins core and the common plugins (each step descriptor's
`getDisplayName()`); a name not in the table is kept as it is, so a plugin's step is still counted,
under its display name. docs/sources.md ("Jenkins") lists the table.
"""

from __future__ import annotations

#: Display name → step function name.
DISPLAY_TO_FUNCTION: dict[str, str] = {
    "Shell Script": "sh",
    "Windows Batch Script": "bat",
    "Windows PowerShell Script": "powershell",
    "PowerShell Core Script": "pwsh",
    "Run arbitrary Pipeline script": "script",
    "Print Message": "echo",
    "Check out from version control": "checkout",
    "General SCM": "checkout",
    "Git": "git",
    "Archive JUnit-formatted test results": "junit",
    "Archive the artifacts": "archiveArtifacts",
    "Stash some files to be used later in the build": "stash",
    "Restore files previously stashed": "unstash",
    "Recursively delete the current directory from the workspace": "deleteDir",
    "Delete workspace when build is done": "cleanWs",
    "Change current directory": "dir",
    "Set environment variables": "withEnv",
    "Bind credentials to variables": "withCredentials",
    "Enforce time limit": "timeout",
    "Retry the body up to N times": "retry",
    "Sleep": "sleep",
    "Error signal": "error",
    "Wait for interactive input": "input",
    "Build a job": "build",
    "Read file from workspace": "readFile",
    "Write file to workspace": "writeFile",
    "Verify if file exists in workspace": "fileExists",
    "Checks if running on a Unix-like node": "isUnix",
    "Allocate node": "node",
    "Allocate workspace": "ws",
    "Execute in parallel": "parallel",
    "Catch error and set build result to failure": "catchError",
    "Catch error and set build and stage result to unstable": "warnError",
    "Set stage result to unstable": "unstable",
    "Publish HTML reports": "publishHTML",
    "Use a tool from a predefined Tool Installation": "tool",
    "Mail": "mail",
    "Extended Email": "emailext",
    "Record compiler warnings and static analysis results": "recordIssues",
    "Provide Maven environment": "withMaven",
    "SSH Agent": "sshagent",
    "Copy artifacts from another project": "copyArtifacts",
    "Fingerprint files": "fingerprint",
    "Milestone": "milestone",
    "Lock shared resource": "lock",
}

#: Function name → display name (the simulator renders steps by it).
FUNCTION_TO_DISPLAY: dict[str, str] = {}
for _display, _function in DISPLAY_TO_FUNCTION.items():
    FUNCTION_TO_DISPLAY.setdefault(_function, _display)


def step_function(display_name: str | None) -> str | None:
    """The step function a wfapi display name stands for; an unknown name is returned unchanged."""
    if display_name is None:
        return None
    return DISPLAY_TO_FUNCTION.get(display_name.strip(), display_name)
