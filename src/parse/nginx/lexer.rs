//! Tokenizer for nginx configuration text. (To be written.)
