/* commands.h - the command hooks of registry entries whose flow is their own
 * (struct bench_desc.command): main.c reaches them through the registry. */
#ifndef MB_HARNESS_COMMANDS_H
#define MB_HARNESS_COMMANDS_H

#include "build_info.h"

#define MOEBENCH_VERSION_STR MOEBENCH_VERSION

int cmd_info(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_claims(int argc, char **argv);
int cmd_pipeline(int argc, char **argv);
int cmd_project(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_scale(int argc, char **argv);

#endif
