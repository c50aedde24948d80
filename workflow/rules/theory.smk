# Synthetic checks of the theory (Table 1). Filled by the theory capability.
