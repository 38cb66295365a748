/*
 * pipeline_nompi.c - the pipeline executor of builds without MPI: it cannot run (see
 * pipeline_exec.h); pipeline_exec_mpi.c is the real one.
 */
#include "pipeline_exec.h"
#include "status.h"

#include <stdio.h>
#include <string.h>

int pipe_execute(const struct pipe_exec_program *prog, const struct pipe_exec_opts *o,
		 struct pipe_exec_result *out)
{
	if (out)
		memset(out, 0, sizeof(*out));
	fprintf(stderr, "moebench: error: the pipeline executor needs MPI, and this build has "
		"none\nhint: install libopenmpi-dev (make deps does) and rebuild\n");
	return MB_ERR_UNSUPPORTED;
}
