"""Jenkins as a source: pipeline builds, their stages and steps, test reports and archived artifacts."""
