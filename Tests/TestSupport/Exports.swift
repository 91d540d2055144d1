// Tests start nodes, back ends and scripts as child processes.
@_exported import DepotProcess
