// Planner: Spec -> Plan.
