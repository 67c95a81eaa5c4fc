"""Running the suites: the tribes-qa command line, the robot/pabot runner, fleet directories."""
