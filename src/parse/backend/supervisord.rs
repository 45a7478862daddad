//! supervisord configuration (`[program:x]` sections). (To be written.)
