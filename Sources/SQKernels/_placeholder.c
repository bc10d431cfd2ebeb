/* placeholder */ typedef int sq_placeholder_t;
