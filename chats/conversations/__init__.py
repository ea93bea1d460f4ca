"""Conversations: chat sessions in a category, their messages and branches, search, exports."""
