//! Loads an nginx configuration from disk: the main file and every `include`, in nginx's order.
//! (To be written.)
