#ifndef DEPOT_CLIBPQ_SHIM_H
#define DEPOT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
