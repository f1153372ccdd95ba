/* chat_template_cmd.h: `shardtune chat-template` (chat_template_cmd.c). */
#ifndef SHARDTUNE_CHAT_TEMPLATE_CMD_H
#define SHARDTUNE_CHAT_TEMPLATE_CMD_H

/* argv after the command name; returns the exit status (dies on errors). */
int chat_template_main(int argc, char **argv);

#endif
